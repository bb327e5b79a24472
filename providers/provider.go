// Package providers defines the small interface every target kind implements
// and the registry that maps a kind to its implementation. The core never
// imports a concrete provider: cmd/jitform builds the registry.
package providers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jitform/jitform/config"
)

// Member is one identity in canonical form. ID is the comparison key
// (a normalised DN, a memberUid, a SID); Name is what a person reads.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Expires: when the server itself removes this membership (an Active
	// Directory TTL link, a Windows host's dead-man's switch), zero for a
	// permanent one. In a change to add,
	// the end of the window the member is granted for (zero: permanent).
	Expires time.Time `json:"expires,omitzero"`
	// Grant: in a change to add, the grant the member is added for (empty
	// for a declared member). A Windows host's dead-man's switch records it.
	Grant string `json:"grant,omitempty"`
}

// Resolution is what a principal, as written in the config, resolves to on
// one target. Err is set for an unknown or ambiguous principal.
type Resolution struct {
	Member Member
	Err    error
}

// Observation is a group's real membership, or why it could not be read.
type Observation struct {
	Members []Member
	Err     error
}

// Action is what a change does to a membership.
type Action string

const (
	Add    Action = "add"
	Remove Action = "remove"
)

// MemberChange is one member to add to or remove from a group.
type MemberChange struct {
	Action Action
	Member Member
}

// GroupChange carries all changes for one managed set, so a provider can
// make them in one write (one LDAP Modify, one PowerShell run per host).
//
// A managed set is a group, a Windows user right or a sudoRole: Group.Kind
// (config.SetGroup, config.SetRight, config.SetSudoRole; "" is a group)
// says which, and the same Read and Apply carry all three. For a right,
// Group.GroupName is the right's constant (SeBackupPrivilege) and members
// are its holders (compared by SID); for a sudo role, Group.DN is the
// sudoRole entry and members are its sudoUser values (compared like a
// posixGroup's memberUid: resolved to the user's DN where one entry has
// that uid). A provider that handles kinds other than groups says so with
// SetKinds; the core never hands it a set of a kind it did not list.
type GroupChange struct {
	Group   *config.Group
	Changes []MemberChange
}

// Status is the outcome of one member change.
type Status string

const (
	Done    Status = "done"    // the provider made the change
	Already Status = "already" // it was already so: someone else did it
	Failed  Status = "failed"  // the provider knows the change was not made
	// Unknown: the call failed in a way that leaves the change's fate
	// unknown (a timeout, a dropped connection). Recorded as such so the
	// ledger keeps an add as possibly made, and a later run can undo it.
	Unknown Status = "unknown"
)

// OK reports whether the membership is now as the change wanted.
func (s Status) OK() bool { return s == Done || s == Already }

// Outcome reports one member change.
type Outcome struct {
	Group  string // group address
	Change MemberChange
	Status Status
	Err    error
	// Sessions: for a removal from a group with end_sessions = true, the
	// principal's logon sessions the provider ended on the host (nil when
	// not asked).
	Sessions *SessionsEnded
}

// SessionsEnded reports the logoff of a removed member's sessions.
type SessionsEnded struct {
	Host  string // the host the sessions were on
	Count int    // sessions logged off
	Err   error  // why some or all could not be ended
}

// Target is a connection to one directory or host.
type Target interface {
	// Resolve maps principals, as written in the config, to members.
	// Resolution is batched; per-principal failures go in Resolution.Err.
	// A plan calls Resolve and Read at the same time.
	Resolve(ctx context.Context, principals []string) (map[string]Resolution, error)
	// Read returns the observed membership of each group, keyed by group
	// address. A group that cannot be read carries Observation.Err.
	Read(ctx context.Context, groups []*config.Group) (map[string]Observation, error)
	// Apply makes the changes and reports one Outcome per member change.
	// It returns an error only when nothing could be attempted.
	Apply(ctx context.Context, changes []GroupChange) ([]Outcome, error)
	Close() error
}

// Observer is implemented by targets for which resolving and reading in one
// call saves round trips (a Windows host: one PowerShell run instead of two).
// The CLI prefers it to Resolve followed by Read.
type Observer interface {
	Observe(ctx context.Context, groups []*config.Group, principals []string) (map[string]Observation, map[string]Resolution, error)
}

// EligibilityChecker is implemented by targets that can answer whether a
// principal is in a directory group (nested membership included), for
// policies whose eligible list names "group:<DN>".
type EligibilityChecker interface {
	InGroups(ctx context.Context, principal string, groupDNs []string) (map[string]bool, error)
}

// SetKinds is implemented by a Target whose Read and Apply handle managed
// sets besides groups. SetKinds lists the kinds it handles (config.SetGroup,
// config.SetRight, config.SetSudoRole). A Target that does not implement
// it handles groups only: the core reports its rights and sudo roles as
// unreadable ("right not supported by this provider yet") and plans
// nothing for them.
type SetKinds interface {
	SetKinds() []string
}

// Supports reports whether t handles managed sets of the given kind.
func Supports(t Target, kind string) bool {
	if kind == "" || kind == config.SetGroup {
		return true
	}
	if sk, ok := t.(SetKinds); ok {
		for _, k := range sk.SetKinds() {
			if k == kind {
				return true
			}
		}
	}
	return false
}

// AccountState is an account's observed state. Err is set when it could
// not be read; the planner then plans nothing for it.
//
// For an ephemeral account block, Exists says whether its base container
// exists, Enabled is unused, and Instances are the accounts found directly
// under base whose description carries the block's marker
// (config.Account.EphemeralMarker).
type AccountState struct {
	Exists  bool
	Enabled bool
	// Expires: when a lock on the server disables the account by itself
	// (a Windows host's dead-man's switch); zero when none.
	Expires   time.Time
	Instances []Instance
	Err       error
}

// Instance is one account an ephemeral account block created, as read.
type Instance struct {
	Name    string // its uid (OpenLDAP) or cn (Active Directory)
	DN      string // as the server spells it
	Grant   string // the grant its description names
	Enabled bool
	// Member is how groups hold it: its canonical DN as Read reports
	// group members.
	Member Member
}

// AccountChange is the desired state of one account.
type AccountChange struct {
	Account *config.Account
	Enable  bool // true: enable it; false: disable it
	// Password, when set, is the new password to set in the same step
	// (rotate_password): before enabling, or before disabling, so that a
	// password seen during a window is dead after it. Providers pass it to
	// the server as data (Password Modify, unicodePwd, a here-string on
	// stdin) and never log it or put it in an error.
	Password config.Secret
	// Expires: for an enable, the end of the window it is for (zero: no
	// end known). A provider with a server-side lock of its own (a Windows
	// host's dead-man's switch) disables the account then even if jitform
	// does not run again. Grant is recorded with it.
	Expires time.Time
	Grant   string
	// Ephemeral accounts: Instance names the account (Name, DN, Grant) and
	// one of Create or Delete is set. Create makes the account under the
	// block's base, disabled and marked with its grant, sets Password,
	// then enables it; an account that already exists with the same
	// marker gets the password and is enabled (a create repeated after a
	// crash), and one without it is never touched. Delete deletes it, only
	// if it carries the marker. Enable is true for a create.
	Instance *Instance
	Create   bool
	Delete   bool
}

// Key identifies the change among one call's changes: the account
// address, and for an ephemeral account the instance's DN.
func (c AccountChange) Key() string {
	if c.Instance == nil {
		return c.Account.Addr
	}
	return c.Account.Addr + "\x00" + c.Instance.DN
}

// AccountOutcome reports one AccountChange. Status is Done when the
// provider changed the account (its enabled state or its password),
// Already when it was already so and no password was to be set, Failed
// when it certainly did not change, Unknown when its fate is unknown.
type AccountOutcome struct {
	Account string // account address
	Change  AccountChange
	Status  Status
	Err     error // never contains the password
}

// AccountManager is implemented by targets that manage accounts (account
// blocks: accounts that exist disabled and are enabled only while a grant
// for them is active). It is optional: the core reports the accounts of a
// target without it as unreadable.
//
// Contract:
//   - ReadAccounts returns one AccountState per account, keyed by account
//     address (config.Account.Addr); an account that does not exist is
//     {Exists: false}, not an error. A per-account failure goes in
//     AccountState.Err; the error return is for when nothing could be read.
//   - SetAccounts makes each change and returns one AccountOutcome per
//     change, in any order. Setting a password and changing the enabled
//     state of one account is one change: when the password cannot be set
//     the account is not enabled. Disabling sets the password first, then
//     disables. It returns an error only when nothing could be attempted.
//   - Enabled means the account can log in: on OpenLDAP (ppolicy) no
//     pwdAccountLockedTime; on Active Directory userAccountControl without
//     ACCOUNTDISABLE; on Windows a local user with Enabled = true.
type AccountManager interface {
	ReadAccounts(ctx context.Context, accounts []*config.Account) (map[string]AccountState, error)
	SetAccounts(ctx context.Context, changes []AccountChange) ([]AccountOutcome, error)
}

// Switch is a dead-man's switch pending on a host: a scheduled task that
// removes Member from Group at At, whether or not jitform runs again.
type Switch struct {
	Host   string    `json:"host"`
	Name   string    `json:"name"`   // the task's path and name, \jitform\<hash>
	Group  string    `json:"group"`  // the group's SID
	Member string    `json:"member"` // the member's SID
	Grant  string    `json:"grant,omitempty"`
	At     time.Time `json:"at"` // when it fires (window end + grace)
}

// SwitchLister is implemented by targets that leave a lock of their own on
// the server (a Windows host's scheduled tasks), so `jitform show` can list
// what is pending there.
type SwitchLister interface {
	Switches(ctx context.Context) ([]Switch, error)
}

// Options are settings the CLI passes to every provider.
type Options struct {
	// BaseDir resolves relative paths in target settings (the config dir).
	BaseDir string
	// Progress, if set, receives one human line per step (stderr).
	Progress func(format string, args ...any)
	// Log, if set, receives one debug record per protocol operation
	// (JITFORM_LOG): timings and result codes, never a secret.
	Log *slog.Logger
}

// Opener connects to a target.
type Opener func(ctx context.Context, t *config.Target, opts Options) (Target, error)

// Registry maps a target kind to its opener.
type Registry map[string]Opener

// Open connects to t with the opener registered for its kind.
func (r Registry) Open(ctx context.Context, t *config.Target, opts Options) (Target, error) {
	open, ok := r[t.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: no provider for target kind %q (known: %v)", t.Addr, t.Kind, r.Kinds())
	}
	return open(ctx, t, opts)
}

// Kinds lists the registered kinds, sorted.
func (r Registry) Kinds() []string {
	ks := make([]string, 0, len(r))
	for k := range r {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
