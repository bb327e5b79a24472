// Package state holds jitform's state: the append-only, hash-chained grants
// ledger and the lock that keeps two applies from interleaving, behind a
// Backend interface (local files in .jitform/ by default).
package state

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event types. A membership change is recorded twice: an intent before the
// provider call and an outcome after it, so a crash in between still leaves
// a record that the member may have been added.
const (
	EventRequest       = "request"        // a grant requested (payload: GrantRequest)
	EventApprove       = "approve"        // signed approval of a request (payload: GrantDecision)
	EventDeny          = "deny"           // signed denial (payload: GrantDecision)
	EventRevoke        = "revoke"         // early end of a grant (payload: GrantDecision)
	EventReview        = "review"         // review of a break-glass grant (payload: GrantDecision)
	EventChangeIntent  = "change_intent"  // about to change a membership (payload: Change)
	EventChangeApplied = "change_applied" // the change happened (payload: ChangeOutcome)
	EventChangeFailed  = "change_failed"  // the change failed (payload: ChangeOutcome)
	// EventSessionsEnded: after a removal from a group with end_sessions,
	// the member's logon sessions on the host were logged off (payload:
	// SessionsEnded).
	EventSessionsEnded = "sessions_ended"
	// EventApplyStarted opens an apply (or a run cycle) that changes
	// something: who ran it (payload: ApplyStarted). It is written in the
	// same append as the first intents; intents refer to it by Change.Run.
	EventApplyStarted = "apply_started"
	// EventApplySigned: a declared actor signed the plan being applied
	// (apply --as NAME); Actor is that actor and Sig their signature
	// (payload: ApplySigned). Written before the run's intents.
	EventApplySigned = "apply_signed"
	// EventRemovedByServer: a member jitform added (and never removed) was
	// found gone: a server-side lock (an expiring link, a host's
	// dead-man's switch) or someone else removed it (payload:
	// RemovedByServer).
	EventRemovedByServer = "removed_by_server"
)

// ApplyStarted is the payload of an apply_started event.
type ApplyStarted struct {
	ID        string `json:"id"` // the run ID; Change.Run and ChangeOutcome.Run refer to it
	PlanID    string `json:"plan_id"`
	Operation string `json:"operation"` // "apply" or "run"
	Runner    Runner `json:"runner"`
}

// Runner is who ran an apply: the OS user and host, and the CI job where
// there is one. Values are recorded verbatim, as data.
type Runner struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	CI   *CI    `json:"ci,omitempty"`
}

// CI is the CI job that ran an apply.
type CI struct {
	Provider   string `json:"provider"`             // "github", "gitlab" or "generic"
	Actor      string `json:"actor,omitempty"`      // GITHUB_ACTOR, GITLAB_USER_LOGIN
	Repository string `json:"repository,omitempty"` // GITHUB_REPOSITORY, CI_PROJECT_PATH
	RunID      string `json:"run_id,omitempty"`     // GITHUB_RUN_ID, JITFORM_RUN_ID
	URL        string `json:"url,omitempty"`        // the run's or job's URL
}

// String is "user@host", with the CI actor and run when there is one, on
// one line: a value with a control character is shown quoted.
func (r Runner) String() string {
	s := oneLine(r.User) + "@" + oneLine(r.Host)
	if r.CI != nil {
		var parts []string
		if r.CI.Actor != "" {
			parts = append(parts, oneLine(r.CI.Actor))
		}
		if r.CI.Repository != "" {
			parts = append(parts, oneLine(r.CI.Repository))
		}
		if r.CI.RunID != "" {
			parts = append(parts, "run "+oneLine(r.CI.RunID))
		} else if r.CI.URL != "" {
			parts = append(parts, oneLine(r.CI.URL))
		}
		s += " via " + oneLine(r.CI.Provider)
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, ", ") + ")"
		}
	}
	return s
}

// oneLine is s, or s quoted (Go syntax) when it holds a control character,
// so a recorded value never forges a line of a log.
func oneLine(s string) string {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0x85 || c == 0x2028 || c == 0x2029 {
			return strconv.Quote(s)
		}
	}
	return s
}

// ApplySigned is the payload of an apply_signed event.
type ApplySigned struct {
	Run        string `json:"run"` // the apply_started ID
	PlanID     string `json:"plan_id"`
	PlanDigest string `json:"plan_digest"` // sha256 of the plan's JSON
}

// Locks that remove a member without jitform (RemovedByServer.Lock).
const (
	LockTTLLink       = "ttl_link"       // an Active Directory expiring link (ttl_links)
	LockWindowsSwitch = "windows_switch" // a Windows host's dead-man's switch
	LockUnknown       = "unknown"        // neither: removed by hand or by another tool
)

// RemovedByServer is the payload of a removed_by_server event.
type RemovedByServer struct {
	Run        string     `json:"run"`    // the apply that found it
	Intent     string     `json:"intent"` // the change_intent that added the member
	Group      string     `json:"group"`
	Member     string     `json:"member"`
	Grant      string     `json:"grant,omitempty"`
	Lock       string     `json:"lock"`
	Expires    *time.Time `json:"expires,omitempty"` // when the lock was due, if known
	ObservedAt time.Time  `json:"observed_at"`
}

// SessionsEnded is the payload of a sessions_ended event.
type SessionsEnded struct {
	ID       string `json:"id"`     // the change_intent of the removal
	Group    string `json:"group"`  // group address
	Member   string `json:"member"` // canonical member ID (a SID)
	Host     string `json:"host"`
	Sessions int    `json:"sessions"`        // how many were logged off
	Error    string `json:"error,omitempty"` // why some or all could not be ended
}

// SystemActor is the actor of events jitform writes itself.
const SystemActor = "jitform"

// Event is one ledger record: canonical JSON, one per line. Hash commits to
// every other field, Prev to the previous event's Hash, so any edit, insert
// or deletion before the head breaks the chain.
type Event struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Actor   string          `json:"actor"`
	Payload json.RawMessage `json:"payload"`
	// Sig is an armored SSH signature (ssh-keygen -Y sign format, namespace
	// "jitform") by Actor over SignedData(); empty for system events.
	Sig  string `json:"sig,omitempty"`
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// Change is the payload of a change_intent event.
type Change struct {
	ID     string `json:"id"`      // unique per intent; outcomes refer to it
	PlanID string `json:"plan_id"` // the plan being applied
	// Kind: "" or "group", "right", "sudo_role" (a managed set), "account".
	Kind   string `json:"kind,omitempty"`
	Action string `json:"action"` // "add" or "remove"; accounts: "enable" or "disable"
	Group  string `json:"group"`  // address of the managed set or account
	Target string `json:"target"` // target address
	Member string `json:"member"` // canonical member ID
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`          // reason kind (grant, window_ended, ...)
	Grant  string `json:"grant,omitempty"` // grant address or ledger grant ID
	Policy string `json:"policy,omitempty"`
	Ticket string `json:"ticket,omitempty"`
	// Run is the apply_started event of the apply that wrote this intent.
	Run string `json:"run,omitempty"`
	// Expires is when a server-side lock removes the member (an expiring
	// link, a dead-man's switch), for adds that have one.
	Expires *time.Time `json:"expires,omitempty"`
}

// ChangeOutcome is the payload of change_applied and change_failed events.
type ChangeOutcome struct {
	ID     string `json:"id"`     // the intent's Change.ID
	Status string `json:"status"` // "done", "already", "failed"
	Error  string `json:"error,omitempty"`
	// Credentials: an account enable that set a new password (rotate_password)
	// delivered it to these grants (grant ID -> fingerprint: the first 16
	// hex digits of the SHA-256 of the stored age ciphertext). Never the
	// password itself.
	Credentials map[string]string `json:"credentials,omitempty"`
	// PasswordRotated: the change set a new password.
	PasswordRotated bool `json:"password_rotated,omitempty"`
	// Run is the apply_started event of the apply that wrote the outcome.
	Run string `json:"run,omitempty"`
}
