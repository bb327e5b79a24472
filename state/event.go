// Package state holds jitform's state: the append-only, hash-chained grants
// ledger and the lock that keeps two applies from interleaving, behind a
// Backend interface (local files in .jitform/ by default).
package state

import (
	"encoding/json"
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
)

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
}
