package sambatest

import (
	"testing"
	"time"
)

// The helper must give a DC that serves the seed over LDAPS, and the
// Go-made certificate (not Samba's own) must be what it presents.
func TestStart(t *testing.T) {
	start := time.Now()
	dc := Start(t)
	t.Logf("DC ready in %v", time.Since(start).Round(time.Millisecond))
	if got := dc.Values(t, AdminsDN, "member"); len(got) != 1 {
		t.Errorf("Admins members = %v, want alice", got)
	}
	if got := dc.Values(t, BigDN, "member"); len(got) != BigSize {
		t.Errorf("Big has %d members, want %d", len(got), BigSize)
	}
	if got := dc.Values(t, Tier1DN, "member"); len(got) != 1 {
		t.Errorf("Tier1 members = %v, want Tier2", got)
	}
}

// Two DCs in one process take turns on 127.0.0.2.
func TestSequentialStarts(t *testing.T) {
	for i := 0; i < 2; i++ {
		t.Run("dc", func(t *testing.T) {
			t.Parallel()
			dc := Start(t)
			if got := dc.Values(t, EmptyDN, "member"); len(got) != 0 {
				t.Errorf("Empty = %v", got)
			}
		})
	}
}
