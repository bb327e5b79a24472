package operation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// rendezvousTarget's Resolve and Read each wait (up to a limit) for the
// other to have started: they succeed only when called at the same time.
type rendezvousTarget struct {
	*fakeTarget
	resolving, reading chan struct{}
	resolveErr         error
}

func (r *rendezvousTarget) meet(mine, theirs chan struct{}) error {
	close(mine)
	select {
	case <-theirs:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("the other read never started")
	}
}

func (r *rendezvousTarget) Resolve(ctx context.Context, ps []string) (map[string]providers.Resolution, error) {
	if err := r.meet(r.resolving, r.reading); err != nil {
		return nil, err
	}
	if r.resolveErr != nil {
		return nil, r.resolveErr
	}
	return r.fakeTarget.Resolve(ctx, ps)
}

func (r *rendezvousTarget) Read(ctx context.Context, gs []*config.Group) (map[string]providers.Observation, error) {
	if err := r.meet(r.reading, r.resolving); err != nil {
		return nil, err
	}
	return r.fakeTarget.Read(ctx, gs)
}

// A plan resolves principals and reads groups at the same time (it waits
// for the longer of the two, not their sum), and a failed resolution is
// still reported as such.
func TestPlanResolvesAndReadsAtTheSameTime(t *testing.T) {
	for _, tc := range []struct {
		name       string
		resolveErr error
		wantErr    string
	}{
		{name: "both answer"},
		{name: "resolution fails", resolveErr: errors.New("directory busy"), wantErr: "resolve principals on target.ldif.a: directory busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, repo)
			f.opts.Registry = providers.Registry{"ldif": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
				ft, err := f.d.open(ctx, tg, o)
				if err != nil {
					return nil, err
				}
				return &rendezvousTarget{fakeTarget: ft.(*fakeTarget), resolving: make(chan struct{}), reading: make(chan struct{}), resolveErr: tc.resolveErr}, nil
			}}
			p, _, err := Plan(context.Background(), f.opts)
			if err != nil {
				t.Fatal(err)
			}
			var unreadable []string
			for _, u := range p.Unreadable {
				unreadable = append(unreadable, u.Group+": "+u.Error)
			}
			got := strings.Join(unreadable, "\n")
			if tc.wantErr == "" {
				if got != "" {
					t.Fatalf("groups unreadable: %s", got)
				}
				if len(p.Changes) == 0 {
					t.Fatal("no changes planned")
				}
				return
			}
			if !strings.Contains(got, tc.wantErr) {
				t.Fatalf("unreadable groups say %q, want %q", got, tc.wantErr)
			}
		})
	}
}
