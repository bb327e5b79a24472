package debuglog

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNewLevels(t *testing.T) {
	tests := []struct {
		setting   string
		on, trace bool
		json      bool
	}{
		{"", false, false, false},
		{"off", false, false, false},
		{"info", false, false, false},
		{"debug", true, false, false},
		{"DEBUG", true, false, false},
		{"trace", true, true, false},
		{"trace,json", true, true, true},
	}
	for _, tt := range tests {
		var b strings.Builder
		log := New(tt.setting, &b)
		if (log != nil) != tt.on {
			t.Errorf("New(%q) on = %v, want %v", tt.setting, log != nil, tt.on)
			continue
		}
		if log == nil {
			continue
		}
		if got := Tracing(context.Background(), log); got != tt.trace {
			t.Errorf("New(%q) tracing = %v, want %v", tt.setting, got, tt.trace)
		}
		Op(context.Background(), log, "ldap modify", time.Now(), errors.New("result 50"), slog.String("dn", "cn=g"))
		out := b.String()
		if !strings.Contains(out, "ldap modify") || !strings.Contains(out, "result 50") || !strings.Contains(out, "took") {
			t.Errorf("New(%q) logged %q", tt.setting, out)
		}
		if tt.json != strings.HasPrefix(out, "{") {
			t.Errorf("New(%q) json = %v: %q", tt.setting, !tt.json, out)
		}
	}
}

func TestOpOffIsSilent(t *testing.T) {
	Op(context.Background(), nil, "x", time.Now(), nil) // no panic, nothing to write
}
