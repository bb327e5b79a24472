package operation

import (
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// RunnerFromEnv is who runs an apply: user, host and pid as given, and the
// CI job read through getenv (GitHub Actions, GitLab CI, or a generic
// JITFORM_RUN_ID). Values are data: they are recorded verbatim, whatever
// they contain, and never interpreted. No CI variable: CI is nil.
func RunnerFromEnv(getenv func(string) string, userName, host string, pid int) state.Runner {
	r := state.Runner{User: userName, Host: host, PID: pid}
	switch {
	case getenv("GITHUB_ACTIONS") == "true" || getenv("GITHUB_RUN_ID") != "":
		ci := &state.CI{Provider: "github", Actor: getenv("GITHUB_ACTOR"),
			Repository: getenv("GITHUB_REPOSITORY"), RunID: getenv("GITHUB_RUN_ID")}
		if srv, repo := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"); srv != "" && repo != "" && ci.RunID != "" {
			ci.URL = strings.TrimSuffix(srv, "/") + "/" + repo + "/actions/runs/" + ci.RunID
		}
		r.CI = ci
	case getenv("GITLAB_CI") == "true" || getenv("CI_JOB_URL") != "" || getenv("GITLAB_USER_LOGIN") != "":
		r.CI = &state.CI{Provider: "gitlab", Actor: getenv("GITLAB_USER_LOGIN"),
			Repository: getenv("CI_PROJECT_PATH"), RunID: getenv("CI_JOB_ID"), URL: getenv("CI_JOB_URL")}
	}
	if id := getenv("JITFORM_RUN_ID"); id != "" {
		if r.CI == nil {
			r.CI = &state.CI{Provider: "generic"}
		}
		if r.CI.RunID == "" || r.CI.Provider == "generic" {
			r.CI.RunID = id
		}
	}
	return r
}

// CurrentRunner is RunnerFromEnv for this process, with the CI variables
// read through getenv (nil: the process environment).
func CurrentRunner(getenv func(string) string) state.Runner {
	if getenv == nil {
		getenv = os.Getenv
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	host, _ := os.Hostname()
	return RunnerFromEnv(getenv, name, host, os.Getpid())
}

// serverLock is the lock that removes a grant's member from a group on t
// without jitform: an expiring link (ldap ttl_links) or a Windows host's
// dead-man's switch; LockUnknown when t has none.
func serverLock(t *config.Target) string {
	switch {
	case t == nil:
		return state.LockUnknown
	case t.LDAP != nil && t.LDAP.TTLLinks:
		return state.LockTTLLink
	case t.WinRM != nil:
		return state.LockWindowsSwitch
	}
	return state.LockUnknown
}

// VerifyApplySignatures checks every apply_signed event of the ledger as
// grant signatures are checked: its actor is declared in cfg and the
// signature is theirs over the event (state.VerifyEventKey). It returns
// how many it checked, and the first failure naming the event.
func VerifyApplySignatures(cfg *config.Config, events []state.Event) (int, error) {
	n := 0
	for _, ev := range events {
		if ev.Type != state.EventApplySigned {
			continue
		}
		n++
		ac := cfg.ActorByName(ev.Actor)
		if ac == nil {
			return n, fmt.Errorf("apply_signed event %d: %q is not a declared actor", ev.Seq, ev.Actor)
		}
		pub, err := state.ParsePublicKey(ac.SSHKey)
		if err != nil {
			return n, fmt.Errorf("apply_signed event %d: actor %s: %w", ev.Seq, ev.Actor, err)
		}
		if err := state.VerifyEventKey(ev, pub); err != nil {
			return n, fmt.Errorf("apply_signed event %d by %s: %w", ev.Seq, ev.Actor, err)
		}
	}
	return n, nil
}
