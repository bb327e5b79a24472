// Package planner is pure: (config, observed membership, ledger view, now) ->
// Plan. It does no I/O. A Plan is data; rendering it for people and as JSON
// lives in render.go and renderjson.go, saving it in planfile.go.
package planner

import (
	"time"

	"github.com/jitform/jitform/config"
)

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
	// Groups summarises every managed set (groups, rights, sudo roles),
	// changed or not; Kind says which.
	Groups []GroupSummary `json:"groups"`
	// Accounts summarises every managed account, changed or not.
	Accounts []AccountSummary `json:"accounts,omitempty"`
}

// MaxPlanAge bounds ValidUntil when no window boundary comes sooner.
const MaxPlanAge = time.Hour

// Kinds of change (Change.Kind): the managed set's kind, or an account.
const (
	KindGroup    = config.SetGroup
	KindRight    = config.SetRight
	KindSudoRole = config.SetSudoRole
	KindAccount  = "account"
)

// Account actions (Change.Action for Kind "account").
const (
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionCreate  = "create" // an ephemeral account for a grant (or its repair)
	ActionDelete  = "delete" // an ephemeral account whose grant stopped counting
)

// Change is one change and why: a member added to or removed from a
// managed set (a group, a right's holders, a sudoRole's sudoUser values),
// or an account enabled or disabled.
type Change struct {
	// Kind is what is changed: "group", "right", "sudo_role" or "account".
	Kind string `json:"kind"`
	// Action: "add" or "remove" for a managed set; "enable" or "disable"
	// for an account; "create" or "delete" for an ephemeral account (Object
	// is its name, Member its canonical DN).
	Action string `json:"action"`
	// Group is the address of the managed set or account changed, e.g.
	// group.web01_admins, right.web01_backup, account.web01_jitadmin.
	Group  string `json:"group"`
	Target string `json:"target"` // target address
	// Object names the right (SeBackupPrivilege), the sudoRole (its DN) or
	// the account (its name or DN) as people read it; empty for groups.
	Object     string `json:"object,omitempty"`
	Member     string `json:"member"` // canonical form; empty for an account
	MemberName string `json:"member_name,omitempty"`
	Principal  string `json:"principal,omitempty"` // as written in the config, when known
	Reason     Reason `json:"reason"`
	// ServerExpires: when the directory itself drops this membership (an
	// Active Directory expiring link, ttl_links): for a remove, the link's
	// expiry as read; for an add, the expiry the add writes.
	ServerExpires *time.Time `json:"server_expires,omitempty"`
	// PasswordRotated: an account change that sets a new random password
	// (rotate_password). The password itself is never in a plan.
	PasswordRotated bool `json:"password_rotated,omitempty"`
	// Credentials: for an enable with PasswordRotated, the grants whose
	// principals receive the new password (age-encrypted to their actor
	// keys); for a disable, the grants whose stored credentials are deleted.
	Credentials []Credential `json:"credentials,omitempty"`
}

// Credential names one grant's delivered account password.
type Credential struct {
	Grant     string `json:"grant"`
	Principal string `json:"principal,omitempty"`
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
	Kind      string   `json:"kind"`
	Grant     string   `json:"grant,omitempty"`
	Policy    string   `json:"policy,omitempty"`
	Ticket    string   `json:"ticket,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	// ApproverFactors: approver -> how their approval was signed, for
	// approvals signed with a security key ("security_key_presence",
	// "security_key_user_verified"); an approver not in it signed with an
	// ordinary SSH key (or approved in the repository).
	ApproverFactors map[string]string `json:"approver_factors,omitempty"`
	WindowStart     *time.Time        `json:"window_start,omitempty"`
	WindowEnd       *time.Time        `json:"window_end,omitempty"`
	BreakGlass      bool              `json:"break_glass,omitempty"`
	Unreviewed      bool              `json:"unreviewed,omitempty"`
	Detail          string            `json:"detail,omitempty"` // a sentence for people
}

// Unreadable is a managed set or account that could not be read: nothing
// is planned for it.
type Unreadable struct {
	Kind   string `json:"kind,omitempty"` // "" for a group
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

// GroupSummary is one managed set's state in the plan.
type GroupSummary struct {
	Kind      string `json:"kind"` // "group", "right" or "sudo_role"
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

// AccountSummary is one managed account's state in the plan.
type AccountSummary struct {
	Account  string `json:"account"` // account address
	Target   string `json:"target"`
	Name     string `json:"name"` // the account's name or DN
	Readable bool   `json:"readable"`
	Exists   bool   `json:"exists"`
	Enabled  bool   `json:"enabled"` // observed
	// Desired: enabled while at least one grant under a policy listing the
	// account is active now.
	DesiredEnabled bool `json:"desired_enabled"`
	RotatePassword bool `json:"rotate_password,omitempty"`
	// Ephemeral: an account block that creates one account per active
	// grant (Name is its pattern and base); Instances counts the accounts
	// read under its base.
	Ephemeral bool `json:"ephemeral,omitempty"`
	Instances int  `json:"instances,omitempty"`
	// ActiveGrants are the grants keeping it enabled now.
	ActiveGrants []string `json:"active_grants,omitempty"`
	Blocked      bool     `json:"blocked,omitempty"`
}

// Kept is a member left alone in a non-exclusive group.
type Kept struct {
	Member     string `json:"member"`
	MemberName string `json:"member_name,omitempty"`
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// approverFactors is the grant's ApproverFactors for its distinct
// approvers, nil when none signed with a security key.
func approverFactors(g *Grant) map[string]string {
	var out map[string]string
	for _, a := range g.Approvers {
		if f, ok := g.ApproverFactors[a]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[a] = f
		}
	}
	return out
}
