package winrm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

func openHTTP(t *testing.T, s *winrmtest.Server, name, auth string) (*target, error) {
	t.Helper()
	c := &config.WinRMTarget{Address: host(name), HTTPS: false, InsecurePlaintext: true, Auth: auth,
		User: s.User, Password: config.NewSecret(pass), Timeout: 10 * time.Second}
	tg := &config.Target{Kind: "winrm", Name: "web", Key: host(name), Addr: `target.winrm.web["` + host(name) + `"]`, WinRM: c}
	return open(context.Background(), tg, providers.Options{}, s.Dial)
}

// Windows requires message encryption on HTTP: NTLM over HTTP is refused
// before anything is sent, Basic over HTTP fails with an explanation unless
// the host allows unencrypted traffic.
func TestPlainHTTP(t *testing.T) {
	admins := []*config.Group{grp("admins", "S-1-5-32-544")}
	t.Run("ntlm over http is refused at open", func(t *testing.T) {
		s := winrmtest.NewHTTP(t, user, pass, host("web01"))
		_, err := openHTTP(t, s, "web01", config.WinRMAuthNTLM)
		if err == nil || !strings.Contains(err.Error(), "message encryption") {
			t.Fatalf("open = %v, want a refusal naming message encryption", err)
		}
		if r, _ := s.Host(host("web01")).Stats(); r != 0 {
			t.Errorf("%d request(s) reached the host", r)
		}
	})
	t.Run("basic over http against a host that refuses unencrypted traffic", func(t *testing.T) {
		s := winrmtest.NewHTTP(t, localUser, pass, host("web01"))
		s.AllowBasic = true
		p, err := openHTTP(t, s, "web01", config.WinRMAuthBasic)
		if err != nil {
			t.Fatal(err)
		}
		obs, _ := p.Read(context.Background(), admins)
		if e := obs["group.admins"].Err; e == nil || !strings.Contains(e.Error(), "AllowUnencrypted") {
			t.Errorf("error = %v, want AllowUnencrypted named", e)
		}
	})
	t.Run("basic over http against a host that allows it", func(t *testing.T) {
		s := winrmtest.NewHTTP(t, localUser, pass, host("web01"))
		s.AllowUnencrypted = true
		s.AllowBasic = true
		p, err := openHTTP(t, s, "web01", config.WinRMAuthBasic)
		if err != nil {
			t.Fatal(err)
		}
		obs, _ := p.Read(context.Background(), admins)
		if e := obs["group.admins"].Err; e != nil {
			t.Errorf("read: %v", e)
		}
	})
}

const localUser = `.\jitform`

// Basic logs in local accounts only, and only where Service/Auth/Basic is
// on (off by default).
func TestBasicIsForLocalAccountsOnly(t *testing.T) {
	for _, tc := range []struct {
		name, user string
		allowBasic bool
		ok         bool
	}{
		{"a domain account", `CORP\svc-jitform`, true, false},
		{"a local account, Basic off (the default)", localUser, false, false},
		{"a local account, Basic on", localUser, true, true},
		{"a local account named by host, Basic on", `WEB01\jitform`, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := winrmtest.New(t, tc.user, pass, host("web01"))
			s.AllowBasic = tc.allowBasic
			p := openHost(t, s, "web01", func(c *config.WinRMTarget) { c.Auth = config.WinRMAuthBasic; c.User = tc.user })
			obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
			e := obs["group.admins"].Err
			if (e == nil) != tc.ok {
				t.Fatalf("read: %v", e)
			}
			if e != nil && !strings.Contains(e.Error(), "local accounts") {
				t.Errorf("error = %v; want Basic's limits named", e)
			}
		})
	}
}

// An HTTP 500 fault is explained, not dumped.
func TestFaultIsExplainedNotDumped(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	s.Host(host("web01")).Fail = true
	p := openHost(t, s, "web01", nil)
	obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
	e := obs["group.admins"].Err
	if e == nil || !strings.Contains(e.Error(), "Access is denied") || !strings.Contains(e.Error(), "LocalAccountTokenFilterPolicy") {
		t.Errorf("error = %v; want the fault's message and what to check", e)
	}
	if e != nil && (strings.Contains(e.Error(), "<s:") || strings.Contains(e.Error(), "Envelope")) {
		t.Errorf("error dumps SOAP: %v", e)
	}
}

// A failing script's error comes back as CLIXML behind progress records;
// the error record is decoded, and a failed apply is unknown (the script
// ran).
func TestCLIXMLErrorIsDecoded(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	s.Host(host("web01")).ConstrainedLanguage = true
	p := openHost(t, s, "web01", nil)
	obs, _ := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
	e := obs["group.admins"].Err
	if e == nil || !strings.Contains(e.Error(), "Only core types are supported in this language mode") || strings.Contains(e.Error(), "CLIXML") {
		t.Errorf("error = %v; want the error record's text, decoded", e)
	}
	outs, _ := p.Apply(context.Background(), []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"),
		Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: "S-1-5-21-9-9-9-1104"}}}}})
	if outs[0].Status != providers.Unknown {
		t.Errorf("apply = %s, want unknown", outs[0].Status)
	}
}

// Output arrives across polls; polls that time out are retried; a poll
// that fails before Done is a transport failure: read errors, apply is
// unknown (its change was made on the host).
func TestOutputPollsAndTransportFailures(t *testing.T) {
	alice := "S-1-5-21-9-9-9-1104"
	for _, tc := range []struct {
		name    string
		knobs   func(*winrmtest.Host)
		readOK  bool
		apply   providers.Status
		errHas  string
		applied bool
	}{
		{"output in pieces of 7 bytes across polls", func(h *winrmtest.Host) { h.OutputChunk = 7 }, true, providers.Done, "", true},
		{"a command that outlasts OperationTimeout: w:TimedOut faults, then output", func(h *winrmtest.Host) { h.RunTime = 1500 * time.Millisecond }, true, providers.Done, "", true},
		{"poll dropped after partial output", func(h *winrmtest.Host) { h.OutputChunk = 20; h.DropReceive = 2 }, false, providers.Unknown, "no Done", true},
		{"first poll dropped", func(h *winrmtest.Host) { h.DropReceive = 1 }, false, providers.Unknown, "no Done", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := winrmtest.New(t, user, pass, host("web01"), host("web02"))
			r, a := s.Host(host("web01")), s.Host(host("web02"))
			tc.knobs(r)
			tc.knobs(a)
			obs, _ := openHost(t, s, "web01", nil).Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
			if e := obs["group.admins"].Err; (e == nil) != tc.readOK || (e != nil && !strings.Contains(e.Error(), tc.errHas)) {
				t.Errorf("read: %v", e)
			}
			outs, _ := openHost(t, s, "web02", nil).Apply(context.Background(), []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"),
				Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: alice}}}}})
			if outs[0].Status != tc.apply {
				t.Errorf("apply = %s (%v), want %s", outs[0].Status, outs[0].Err, tc.apply)
			}
			if got := slices.Contains(a.Members("S-1-5-32-544"), alice); got != tc.applied {
				t.Errorf("alice added on the host = %v, want %v", got, tc.applied)
			}
		})
	}
}

// Stdin travels in slices that fit a 150 KB MaxEnvelopeSizekb; a host whose
// limit is smaller than a slice refuses it, and the apply is failed (the
// script never had all of its input), with the limit named.
func TestStdinSlicesFitTheEnvelope(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"), host("tiny"))
	h := s.Host(host("web01"))
	var principals []string
	for i := 0; i < 2000; i++ {
		sid := fmt.Sprintf("S-1-5-21-7-7-7-%d", 3000+i)
		name := fmt.Sprintf(`CORP\user%04d-%s`, i, strings.Repeat("x", 60))
		h.Accounts[sid] = name
		principals = append(principals, name)
	}
	p := openHost(t, s, "web01", nil)
	_, res, err := p.Observe(context.Background(), nil, principals)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range principals {
		if res[n].Err != nil {
			t.Fatalf("%s: %v", n, res[n].Err)
		}
	}
	if d := len(h.RunsSeen()[0].Data); d < 150*1024 {
		t.Errorf("stdin data of %d bytes: the test must exceed one 150 KB envelope", d)
	}

	s.MaxEnvelopeSizeKB = 40
	tiny := s.Host(host("tiny"))
	var changes []providers.MemberChange
	for i := 0; i < 1200; i++ {
		changes = append(changes, providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: fmt.Sprintf("S-1-5-21-7-7-7-%d", 3000+i)}})
	}
	outs, _ := openHost(t, s, "tiny", nil).Apply(context.Background(), []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"), Changes: changes}})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "MaxEnvelopeSizekb") {
		t.Errorf("apply on a host with a 40 KB envelope = %s %v", outs[0].Status, outs[0].Err)
	}
	if len(tiny.RunsSeen()) != 0 {
		t.Error("the script ran without all of its input")
	}
}
