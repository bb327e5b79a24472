package winrm

import (
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/winrmtest"
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
