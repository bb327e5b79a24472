// Package config decodes a jitform policy repository (every *.hcl file in a
// directory) into plain Go structs. Every problem is reported as an
// hcl.Diagnostic with a source range, so a user fixes all mistakes in one pass.
//
// Targets that list several hosts, and the groups on them, are expanded here
// into one Target and one Group per instance, so that everything downstream
// (planner, providers, ledger) sees a flat list keyed by address.
package config

import (
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Config is a whole policy repository.
type Config struct {
	Dir     string
	Targets []*Target // one per instance, in source order
	// Groups holds every managed set of principals, one per instance in
	// source order: group blocks (Kind "group"), right blocks ("right") and
	// sudo_role blocks ("sudo_role"). The planner treats them alike.
	Groups   []*Group
	Accounts []*Account // account blocks, one per instance, in source order
	Actors   []*Actor
	Policies []*Policy
	Grants   []*Grant  // repository grants (HCL grant blocks)
	Notify   []*Notify // notify "webhook" blocks (notify.go)

	// Digest is a hex SHA-256 over the repository's files (names and bytes),
	// stored in plans so that a saved plan is refused after the config changed.
	Digest string
	// Files holds each file's source, for rendering diagnostics with snippets.
	Files map[string]*hcl.File
}

// Target is one directory or host. Kind selects the provider; the settings
// for each kind live in the kind's own field (exactly one is non-nil).
type Target struct {
	Kind string // "ldap", "ldif", "winrm"
	Name string // block label
	Key  string // instance key for multi-host targets (a host), "" otherwise
	// Addr is the target's address: target.ldap.corp, or
	// target.winrm.web["web01"] for an instance of a multi-host target.
	Addr string

	LDAP  *LDAPTarget
	LDIF  *LDIFTarget
	WinRM *WinRMTarget

	DeclRange hcl.Range
}

// Kinds of managed set (Group.Kind), also the block types that declare them.
const (
	SetGroup    = "group"     // a privileged group: group "NAME" {}
	SetRight    = "right"     // a Windows user right (local security policy): right "NAME" {}
	SetSudoRole = "sudo_role" // an LDAP sudoRole; members are sudoUser values: sudo_role "NAME" {}
)

// Group is one managed set of principals on one target instance: a
// privileged group, a Windows user right (its holders) or a sudoRole (its
// sudoUser values). Kind says which; the planner's semantics (declared ∪
// granted, exclusive or not, ledger-managed members) are the same for all.
type Group struct {
	Kind string // SetGroup, SetRight or SetSudoRole; "" is read as SetGroup
	Name string // block label
	Key  string // instance key when its target has several hosts
	// Addr is KIND.NAME (group.NAME, right.NAME, sudo_role.NAME), or
	// KIND.NAME["host"] for an instance.
	Addr string
	// BaseAddr is KIND.NAME for every instance: what policies refer to.
	BaseAddr string

	Target *Target

	DN string // directories: the group's or sudoRole's DN
	// GroupName is HCL "name": a SID or a name (Windows local groups,
	// posixGroup cn), or for a right its constant (SeBackupPrivilege).
	GroupName  string
	Members    []string // declared standing members, as written
	Exclusive  bool
	Attributes GroupAttributes

	DeclRange    hcl.Range
	MembersRange hcl.Range
}

// SetKind is g.Kind, with "" read as SetGroup.
func (g *Group) SetKind() string {
	if g.Kind == "" {
		return SetGroup
	}
	return g.Kind
}

// Account is an account block on one target instance: an admin account
// that exists disabled and is enabled only while a grant for it is active.
type Account struct {
	Name     string // block label
	Key      string // instance key when its target has several hosts
	Addr     string // account.NAME, or account.NAME["host"]
	BaseAddr string // account.NAME: what policies refer to
	Target   *Target

	AccountName    string // winrm: the local account's name
	DN             string // ldap, ldif: the account entry's DN
	RotatePassword bool   // a fresh random password at each enable and disable
	// Ephemeral: an account created for each grant counting now, from
	// Pattern under Base, and deleted when the grant stops counting
	// (ephemeral.go). RotatePassword is always set for it.
	Ephemeral bool
	Pattern   string // ephemeral: the name pattern; "" is DefaultEphemeralPattern
	Base      string // ephemeral, ldap and ldif: the container the accounts are created in

	DeclRange hcl.Range
}

// Display is how people read the account: its name, or its DN.
func (a *Account) Display() string {
	if a.Ephemeral {
		p := a.Pattern
		if p == "" {
			p = DefaultEphemeralPattern
		}
		return p + " in " + a.Base
	}
	if a.AccountName != "" {
		return a.AccountName
	}
	return a.DN
}

// GroupAttributes carries optional per-group provider settings.
type GroupAttributes struct {
	// Placeholder is a member kept in a groupOfNames that would otherwise
	// become empty (groupOfNames requires at least one member).
	Placeholder string
	// EndSessions (winrm groups, end_sessions = true): removing a member
	// also logs off its interactive and RDP sessions on the host.
	EndSessions bool
}

// Actor is a person who requests or approves, identified by an SSH key.
type Actor struct {
	Name      string
	SSHKey    string // authorized_keys format, as written
	DeclRange hcl.Range
}

// Approval modes of a policy.
const (
	ApprovalRepository = "repository" // grant blocks, approved by review of the repo
	ApprovalLedger     = "ledger"     // signed approval events from declared actors
)

// require_security_key modes: requests, approvals and reviews under the
// policy count only when signed by a FIDO security key (an sk-* ssh_key)
// with the user presence flag, and for SecurityKeyUserVerification also the
// user verification flag (a PIN or biometric).
const (
	SecurityKeyPresence         = "presence"
	SecurityKeyUserVerification = "user_verification"
)

// IsSecurityKeyType reports whether an SSH key type is a FIDO security-key
// type (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com).
func IsSecurityKeyType(keyType string) bool {
	return keyType == "sk-ssh-ed25519@openssh.com" || keyType == "sk-ecdsa-sha2-nistp256@openssh.com"
}

// Policy says who may hold which groups, for how long, approved by whom.
type Policy struct {
	Name string
	Addr string // policy.NAME

	Groups        []string // group base addresses: group.NAME
	Rights        []string // right base addresses: right.NAME
	SudoRoles     []string // sudo_role base addresses: sudo_role.NAME
	Accounts      []string // account base addresses: account.NAME
	Eligible      []string // principals, or "group:<DN>" directory groups
	MaxDuration   time.Duration
	Approvals     int // distinct approvers needed
	Approvers     []string
	TicketPattern *regexp.Regexp // nil: no ticket required
	Windows       []Window       // empty: any time
	Approval      string         // ApprovalRepository (default) or ApprovalLedger
	RequestTTL    time.Duration  // pending request lifetime (default 24h)
	MaxActive     int            // 0: unlimited active grants per principal
	BreakGlass    *BreakGlass
	// RequireSecurityKey: "" (any declared key), SecurityKeyPresence or
	// SecurityKeyUserVerification (require_security_key).
	RequireSecurityKey string

	DeclRange hcl.Range
	Ranges    Ranges // where each attribute was written
}

// Sets lists the base addresses of every managed set the policy grants:
// its groups, rights and sudo roles (accounts have their own semantics).
func (p *Policy) Sets() []string {
	if len(p.Rights) == 0 && len(p.SudoRoles) == 0 {
		return p.Groups
	}
	out := make([]string, 0, len(p.Groups)+len(p.Rights)+len(p.SudoRoles))
	out = append(out, p.Groups...)
	out = append(out, p.Rights...)
	return append(out, p.SudoRoles...)
}

// BreakGlass lets an eligible actor grant themselves access without approval.
type BreakGlass struct {
	MaxDuration time.Duration
	// MaxPerDay caps each principal's break-glass time under the policy in
	// any 24 hours (0: no cap).
	MaxPerDay time.Duration
}

// Grant is a grant block: approved by review of the repository.
type Grant struct {
	Name       string
	Addr       string // grant.NAME
	Policy     string // policy address: policy.NAME
	Principal  string
	Start      time.Time // UTC
	Duration   time.Duration
	Ticket     string
	Reason     string
	ApprovedBy []string

	DeclRange hcl.Range
	Ranges    Ranges // where each attribute was written
}

// End is when the grant's window closes.
func (g *Grant) End() time.Time { return g.Start.Add(g.Duration) }

// TargetByAddr returns the target with that address, or nil.
func (c *Config) TargetByAddr(addr string) *Target {
	for _, t := range c.Targets {
		if t.Addr == addr {
			return t
		}
	}
	return nil
}

// GroupByAddr returns the group instance with that address, or nil.
func (c *Config) GroupByAddr(addr string) *Group {
	for _, g := range c.Groups {
		if g.Addr == addr {
			return g
		}
	}
	return nil
}

// AccountByAddr returns the account instance with that address, or nil.
func (c *Config) AccountByAddr(addr string) *Account {
	for _, a := range c.Accounts {
		if a.Addr == addr {
			return a
		}
	}
	return nil
}

// PolicyByAddr returns the policy with that address (policy.NAME), or nil.
func (c *Config) PolicyByAddr(addr string) *Policy {
	for _, p := range c.Policies {
		if p.Addr == addr {
			return p
		}
	}
	return nil
}

// ActorForPrincipal is the actor a grant's principal receives account
// passwords as: the actor named exactly like the principal, or else the one
// named like the principal's account without its domain (alice for
// CORP\alice or alice@corp.example), compared case-insensitively. Nil when
// there is none.
func (c *Config) ActorForPrincipal(principal string) *Actor {
	if a := c.ActorByName(principal); a != nil {
		return a
	}
	name := ActorNameOf(principal)
	for _, a := range c.Actors {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// ActorNameOf strips a principal's domain: CORP\alice and
// alice@corp.example are alice. A DN is left as is.
func ActorNameOf(principal string) string {
	if i := strings.LastIndex(principal, "\\"); i >= 0 {
		return principal[i+1:]
	}
	if i := strings.Index(principal, "@"); i > 0 && !strings.Contains(principal, "=") {
		return principal[:i]
	}
	return principal
}

// ActorByName returns the declared actor, or nil.
func (c *Config) ActorByName(name string) *Actor {
	for _, a := range c.Actors {
		if a.Name == name {
			return a
		}
	}
	return nil
}
