package winrm

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

// TestErrorsQuoteAtMost500CharactersOfHostOutput: when a host's script
// fails, the error quotes what it printed, trimmed, up to 500 characters
// and an ellipsis, so one broken host cannot flood a plan.
func TestErrorsQuoteAtMost500CharactersOfHostOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, out, want string
	}{
		{"short", "  Access is denied.\r\n", "Access is denied."},
		{"exactly 500", strings.Repeat("x", 500), strings.Repeat("x", 500)},
		{"501", strings.Repeat("y", 501), strings.Repeat("y", 500) + "…"},
		{"long", strings.Repeat("z", 5000), strings.Repeat("z", 500) + "…"},
	} {
		if got := clip(tc.out); got != tc.want {
			t.Errorf("%s: clip = %q (%d bytes), want %d bytes", tc.name, got, len(got), len(tc.want))
		}
	}
}

// TestATargetWithoutTimeoutWaitsTheDefault: a winrm target that sets no
// timeout (or a non-positive one) gets the documented default.
func TestATargetWithoutTimeoutWaitsTheDefault(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{0, config.DefaultWinRMTimeout},
		{-time.Second, config.DefaultWinRMTimeout},
		{time.Nanosecond, time.Nanosecond},
		{90 * time.Second, 90 * time.Second},
	} {
		p := openHost(t, s, "web01", func(c *config.WinRMTarget) { c.Timeout = tc.set })
		if p.timeout != tc.want {
			t.Errorf("timeout %v: the target waits %v, want %v", tc.set, p.timeout, tc.want)
		}
	}
}

// TestATargetConnectsToItsPort: WinRM's default ports (5986 over HTTPS,
// 5985 over plain HTTP), or the port the target names.
func TestATargetConnectsToItsPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		https bool
		port  int
		want  string
	}{
		{"https by default", true, 0, "web01.example:5986"},
		{"http by default", false, 0, "web01.example:5985"},
		{"a port named", true, 15986, "web01.example:15986"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var dialed []string
			dial := func(_, addr string) (net.Conn, error) {
				mu.Lock()
				defer mu.Unlock()
				dialed = append(dialed, addr)
				return nil, errors.New("not connecting in this test")
			}
			c := &config.WinRMTarget{Address: "web01.example", HTTPS: tc.https, InsecurePlaintext: !tc.https, Port: tc.port,
				Auth: config.WinRMAuthBasic, User: user, Password: config.NewSecret(pass), Timeout: time.Second}
			tg := &config.Target{Kind: "winrm", Name: "web", Addr: "target.winrm.web", WinRM: c}
			p, err := open(context.Background(), tg, providers.Options{}, dial)
			if err != nil {
				t.Fatal(err)
			}
			obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
			if obs["group.admins"].Err == nil {
				t.Fatal("a read through a dialer that refuses succeeded")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(dialed) == 0 || dialed[0] != tc.want {
				t.Fatalf("dialed %v, want %s", dialed, tc.want)
			}
		})
	}
}

// TestAnErrorThatEchoesThePasswordShowsItAsSensitive: whatever a
// transport puts in its error, the target's password never reaches the
// plan; the rest of the message does.
func TestAnErrorThatEchoesThePasswordShowsItAsSensitive(t *testing.T) {
	t.Parallel()
	dial := func(_, addr string) (net.Conn, error) {
		return nil, errors.New("proxy refused " + addr + " for " + user + ":" + pass)
	}
	c := &config.WinRMTarget{Address: "web01.example", HTTPS: true, Auth: config.WinRMAuthBasic,
		User: user, Password: config.NewSecret(pass), Timeout: time.Second}
	p, err := open(context.Background(), &config.Target{Kind: "winrm", Name: "web", Addr: "target.winrm.web", WinRM: c}, providers.Options{}, dial)
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
	e := obs["group.admins"].Err
	if e == nil || strings.Contains(e.Error(), pass) || !strings.Contains(e.Error(), "proxy refused web01.example:5986 for "+user+":(sensitive)") {
		t.Fatalf("error %v: want the password shown as (sensitive) and the rest kept", e)
	}
}
