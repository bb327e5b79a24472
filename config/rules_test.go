package config

import (
	"strings"
	"testing"
)

// TestDurationErrorsSayWhatIsWrong: a duration with a day part that is not
// a whole number is refused for its days, so the fix is obvious.
func TestDurationErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"d", `duration "d": days must be a whole number`},
		{"d4h", `duration "d4h": days must be a whole number`},
		{"xd", `duration "xd": days must be a whole number`},
		{"4x", `duration "4x": write it like "4h"`},
	} {
		if _, err := ParseDuration(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDuration(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
