package operation

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jitform/jitform/state"
)

// The runner is read from the environment: GitHub Actions, GitLab CI, a
// generic JITFORM_RUN_ID, or none; values are recorded verbatim.
func TestRunnerFromEnvReadsTheCIIdentity(t *testing.T) {
	t.Parallel()
	hostile := "evil\"\n}\"; rm -rf / #"
	tests := []struct {
		name string
		env  map[string]string
		want *state.CI
	}{
		{"none", map[string]string{"HOME": "/root"}, nil},
		{"github", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/policy",
			"GITHUB_RUN_ID": "42", "GITHUB_SERVER_URL": "https://github.com",
		}, &state.CI{Provider: "github", Actor: "octocat", Repository: "acme/policy", RunID: "42",
			URL: "https://github.com/acme/policy/actions/runs/42"}},
		{"github without server url has no url", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/policy", "GITHUB_RUN_ID": "42",
		}, &state.CI{Provider: "github", Actor: "octocat", Repository: "acme/policy", RunID: "42"}},
		{"gitlab", map[string]string{
			"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "jdoe", "CI_PROJECT_PATH": "acme/policy",
			"CI_JOB_ID": "7", "CI_JOB_URL": "https://gitlab.example/acme/policy/-/jobs/7",
		}, &state.CI{Provider: "gitlab", Actor: "jdoe", Repository: "acme/policy", RunID: "7",
			URL: "https://gitlab.example/acme/policy/-/jobs/7"}},
		{"generic", map[string]string{"JITFORM_RUN_ID": "nightly-2026-12-01"},
			&state.CI{Provider: "generic", RunID: "nightly-2026-12-01"}},
		{"hostile values are data", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": hostile, "GITHUB_RUN_ID": "1"},
			&state.CI{Provider: "github", Actor: hostile, RunID: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := RunnerFromEnv(func(k string) string { return tt.env[k] }, "ops", "bastion", 99)
			if r.User != "ops" || r.Host != "bastion" || r.PID != 99 {
				t.Errorf("runner = %+v, want ops@bastion pid 99", r)
			}
			if !reflect.DeepEqual(r.CI, tt.want) {
				t.Fatalf("CI = %+v, want %+v", r.CI, tt.want)
			}
			// Recorded as JSON and read back, every value is unchanged.
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back state.Runner
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatalf("runner JSON %s does not decode: %v", raw, err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Errorf("runner after JSON = %+v, want %+v", back, r)
			}
		})
	}
}

// Every apply that writes records who ran it in one apply_started event,
// in the same append as its first intents, and every intent and outcome
// refers to it.
func TestApplyRecordsWhoRanItInTheFirstAppend(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	cb := &countingBackend{Backend: f.opts.Backend}
	f.opts.Backend = cb
	f.opts.Runner = &state.Runner{User: "ops", Host: "bastion", PID: 7,
		CI: &state.CI{Provider: "generic", RunID: "line1\nline2 \"quoted\""}}
	if _, err := Apply(context.Background(), f.opts, nil, nil); err != nil {
		t.Fatal(err)
	}
	evs := events(t, f.opts.Backend)
	if len(evs) == 0 || evs[0].Type != state.EventApplyStarted {
		t.Fatalf("first event = %v, want apply_started", evs)
	}
	var st state.ApplyStarted
	if err := json.Unmarshal(evs[0].Payload, &st); err != nil {
		t.Fatal(err)
	}
	if st.Operation != "apply" || st.ID == "" || st.PlanID == "" || !reflect.DeepEqual(st.Runner, *f.opts.Runner) {
		t.Errorf("apply_started = %+v, want operation apply, the plan and runner %+v", st, *f.opts.Runner)
	}
	if evs[1].Type != state.EventChangeIntent {
		t.Errorf("second event is %s, want the first change_intent", evs[1].Type)
	}
	// apply_started cost no write of its own: 2 targets, at most 4 appends.
	if got := cb.appends.Load(); got > 4 {
		t.Errorf("%d appends, want at most 4", got)
	}
	started := 0
	for _, ev := range evs {
		var ref struct {
			Run string `json:"run"`
		}
		switch ev.Type {
		case state.EventApplyStarted:
			started++
			continue
		case state.EventChangeIntent, state.EventChangeApplied, state.EventChangeFailed:
		default:
			continue
		}
		if err := json.Unmarshal(ev.Payload, &ref); err != nil {
			t.Fatal(err)
		}
		if ref.Run != st.ID {
			t.Errorf("event %d (%s) refers to run %q, want %q", ev.Seq, ev.Type, ref.Run, st.ID)
		}
	}
	if started != 1 {
		t.Errorf("%d apply_started events, want 1", started)
	}
	// An apply with nothing to do writes nothing.
	n := len(evs)
	if _, err := Apply(context.Background(), f.opts, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(events(t, f.opts.Backend)); got != n {
		t.Errorf("an apply without changes wrote %d event(s)", got-n)
	}
}
