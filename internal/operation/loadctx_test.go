package operation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A signal during load (a cancelled context) stops plan and apply before
// any I/O, with a configuration error that says the load was cut short.
func TestPlanStopsLoadingOnCancel(t *testing.T) {
	f := newFixture(t, repo)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Plan(ctx, f.opts)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not fully read") {
		t.Fatalf("Plan with a cancelled context = %v, want a ConfigError saying the load stopped", err)
	}
	if _, err := Apply(ctx, f.opts, nil, nil); !errors.As(err, &ce) {
		t.Fatalf("Apply with a cancelled context = %v, want a ConfigError", err)
	}
	if _, _, err := LoadConfigContext(context.Background(), f.opts.Dir, time.Now()); err != nil {
		t.Fatalf("the same repository loads without a signal: %v", err)
	}
}
