// Package planner is pure: (config, observed membership, ledger view, now) ->
// Plan. It does no I/O. A Plan is data; rendering it for people and as JSON
// lives in render.go and renderjson.go, saving it in planfile.go.
package planner

import "time"

// FormatVersion is the version of the plan JSON (docs/plan-json.md).
const FormatVersion = "1.0"

// Plan is what apply will do, with a reason for every change.
type Plan struct {
	FormatVersion string    `json:"format_version"`
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	// At is the instant the plan was computed for (now, or --at).
	At time.Time `json:"at"`
	// ValidUntil is the next window boundary (capped at CreatedAt+MaxPlanAge):
	// applying the plan afterwards is refused as stale.
	ValidUntil time.Time `json:"valid_until"`
	// NextChangeAt is when the next window opens or closes; nil if none.
	NextChangeAt *time.Time `json:"next_change_at"`
	// NextChange says what happens at NextChangeAt ("grant.x ends").
	NextChange string `json:"next_change,omitempty"`

	// Digests of what the plan observed; apply refuses a saved plan after
	// any of them changed.
	ConfigDigest string            `json:"config_digest"`
	LedgerHead   string            `json:"ledger_head"`
	Observed     map[string]string `json:"observed"` // group address -> membership digest

	Changes    []Change     `json:"changes"`
	Unreadable []Unreadable `json:"unreadable,omitempty"`
	Warnings   []Warning    `json:"warnings,omitempty"`
	// Errors are problems that make a part of the plan impossible (an
	// unknown principal, a group that would become empty); apply refuses a
	// plan with errors.
	Errors []Warning `json:"errors,omitempty"`
	// Groups summarises every managed group, changed or not.
	Groups []GroupSummary `json:"groups"`
}

// MaxPlanAge bounds ValidUntil when no window boundary comes sooner.
const MaxPlanAge = time.Hour

// Change is one membership change and why.
type Change struct {
	Action     string `json:"action"` // "add" or "remove"
	Group      string `json:"group"`  // group address, e.g. group.web01_admins
	Target     string `json:"target"` // target address
	Member     string `json:"member"` // canonical form
	MemberName string `json:"member_name,omitempty"`
	Principal  string `json:"principal,omitempty"` // as written in the config, when known
	Reason     Reason `json:"reason"`
	// ServerExpires: when the directory itself drops this membership (an
	// Active Directory expiring link, ttl_links): for a remove, the link's
	// expiry as read; for an add, the expiry the add writes.
	ServerExpires *time.Time `json:"server_expires,omitempty"`
}

// Reason kinds.
const (
	ReasonDeclared      = "declared"       // a declared standing member is missing
	ReasonGrant         = "grant"          // an approved grant is active now
	ReasonWindowEnded   = "window_ended"   // the grant's window has ended
	ReasonRevoked       = "revoked"        // the grant was revoked
	ReasonUndeclared    = "undeclared"     // exclusive group: neither declared nor granted
	ReasonPolicyChanged = "policy_changed" // the grant no longer conforms to its policy, or the policy is gone
	ReasonNotManaged    = "no_longer_managed"
)

// Reason says why a change is in the plan; an auditor never has to guess.
type Reason struct {
	Kind        string     `json:"kind"`
	Grant       string     `json:"grant,omitempty"`
	Policy      string     `json:"policy,omitempty"`
	Ticket      string     `json:"ticket,omitempty"`
	Approvers   []string   `json:"approvers,omitempty"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Unreviewed  bool       `json:"unreviewed,omitempty"`
	Detail      string     `json:"detail,omitempty"` // a sentence for people
}

// Unreadable is a group that could not be read: nothing is planned for it.
type Unreadable struct {
	Group  string `json:"group"`
	Target string `json:"target"`
	Error  string `json:"error"`
}

// Warning is a problem that does not stop the plan (a grant that does not
// count, and why), with where it was written.
type Warning struct {
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	Subject string `json:"subject,omitempty"` // file:line:col
}

// GroupSummary is one managed group's state in the plan.
type GroupSummary struct {
	Group     string `json:"group"`
	Target    string `json:"target"`
	Exclusive bool   `json:"exclusive"`
	Observed  int    `json:"observed"`
	Desired   int    `json:"desired"`
	Adds      int    `json:"adds"`
	Removes   int    `json:"removes"`
	Readable  bool   `json:"readable"`
	// Blocked: the group had an error (an unknown principal) and gets no
	// changes in this plan.
	Blocked bool `json:"blocked,omitempty"`
	// Kept lists members of a non-exclusive group that are neither declared
	// nor granted but stay, because jitform did not add them.
	Kept []Kept `json:"kept,omitempty"`
}

// Kept is a member left alone in a non-exclusive group.
type Kept struct {
	Member     string `json:"member"`
	MemberName string `json:"member_name,omitempty"`
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }
