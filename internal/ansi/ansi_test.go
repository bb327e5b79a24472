package ansi

import "testing"

func TestPaint(t *testing.T) {
	tests := []struct {
		on       Painter
		code, in string
		want     string
	}{
		{true, Red, "gone", "\x1b[31mgone\x1b[0m"},
		{true, Red + Bold, "FAILED", "\x1b[31m\x1b[1mFAILED\x1b[0m"},
		{false, Red, "gone", "gone"},
		{true, Green, "", ""},
	}
	for _, tt := range tests {
		if got := tt.on.Paint(tt.code, tt.in); got != tt.want {
			t.Errorf("Painter(%v).Paint(%q, %q) = %q, want %q", tt.on, tt.code, tt.in, got, tt.want)
		}
	}
}
