package operation

import (
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

// CurrentRunner is RunnerFromEnv for this process.
func CurrentRunner() state.Runner {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	host, _ := os.Hostname()
	return RunnerFromEnv(os.Getenv, name, host, os.Getpid())
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
