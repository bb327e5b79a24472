package config

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

// declare checks a label and records the declaration in m. A block with an
// invalid name is recorded as broken so references to it stay quiet.
func (l *loader) declare(b *hcl.Block, m map[string]*declared, addr string) (*declared, bool) {
	name := b.Labels[0]
	prev := m[name]
	if !l.checkName(b, 0, prev, addr) {
		if prev == nil {
			m[name] = &declared{decl: b.DefRange, broken: true}
		}
		return nil, false
	}
	d := &declared{decl: b.DefRange}
	m[name] = d
	return d, true
}

// names lists the addresses declared in m, for suggestions.
func names(prefix string, m map[string]*declared) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, prefix+n)
	}
	sort.Strings(out)
	return out
}

type groupHCL struct {
	Target      hcl.Expression `hcl:"target"`
	Name        string         `hcl:"name,optional"`
	DN          string         `hcl:"dn,optional"`
	Members     []string       `hcl:"members,optional"`
	Exclusive   bool           `hcl:"exclusive,optional"`
	Placeholder string         `hcl:"placeholder,optional"`
	EndSessions bool           `hcl:"end_sessions,optional"`
}

// rightHCL and sudoRoleHCL are the bodies of right and sudo_role blocks:
// a managed set like a group, named by name (a right) or dn (a sudoRole).
type rightHCL struct {
	Target    hcl.Expression `hcl:"target"`
	Name      string         `hcl:"name,optional"`
	Members   []string       `hcl:"members,optional"`
	Exclusive bool           `hcl:"exclusive,optional"`
}

type sudoRoleHCL struct {
	Target    hcl.Expression `hcl:"target"`
	DN        string         `hcl:"dn,optional"`
	Members   []string       `hcl:"members,optional"`
	Exclusive bool           `hcl:"exclusive,optional"`
}

// setTargets says which target kinds each kind of managed set lives on.
var setTargets = map[string][]string{
	SetGroup:    {KindLDAP, KindLDIF, KindWinRM},
	SetRight:    {KindWinRM},
	SetSudoRole: {KindLDAP, KindLDIF},
}

// declaredOf is the declaration map of a kind of block that policies refer to.
func (l *loader) declaredOf(kind string) map[string]*declared {
	switch kind {
	case SetRight:
		return l.rights
	case SetSudoRole:
		return l.sudoRoles
	case "account":
		return l.accounts
	}
	return l.groups
}

// blockTarget resolves the target attribute of a group, right, sudo_role or
// account block: the target entry, the instances the block applies to, and
// the reference (for an instance key). ok is false when reported (or when
// the target itself was broken and reported there).
func (l *loader) blockTarget(b *hcl.Block, at blockAttrs, expr hcl.Expression, hint string) (*targetEntry, []*Target, ref, bool) {
	if !l.require(b, at, "target", hint) {
		return nil, nil, ref{}, false
	}
	r, ok := l.parseRef(expr, "target", "target", true)
	if !ok {
		return nil, nil, r, false
	}
	te := l.targets[r.names[0]+"."+r.names[1]]
	taddr := "target." + r.names[0] + "." + r.names[1]
	if te == nil {
		var cands []string
		for k := range l.targets {
			cands = append(cands, "target."+k)
		}
		sort.Strings(cands)
		l.undeclared(r, taddr, cands)
		return nil, nil, r, false
	}
	if !slices.Contains(targetKinds, te.kind) {
		return nil, nil, r, false // the unknown kind was reported at the target
	}
	instances := te.instances
	if r.hasKey && !te.broken {
		if te.hosts == nil {
			l.errorf(r.rng.Ptr(), "Invalid reference", "%s is a single host; refer to it as %s, without [\"%s\"].", taddr, taddr, r.key)
			return nil, nil, r, false
		}
		i := slices.Index(te.hosts, r.key)
		if i < 0 {
			l.errorf(r.rng.Ptr(), "Reference to an undeclared host", "%s has no host %q%s; its hosts are %s.",
				taddr, r.key, suggest(r.key, te.hosts), strings.Join(te.hosts, ", "))
			return nil, nil, r, false
		}
		instances = instances[i : i+1]
	}
	return te, instances, r, true
}

func (l *loader) group(b *hcl.Block) { l.managedSet(b, SetGroup) }

// managedSet decodes a group, right or sudo_role block (kind is the block
// type): one Group per target instance, with Kind set.
func (l *loader) managedSet(b *hcl.Block, kind string) {
	name := b.Labels[0]
	base := kind + "." + name
	d, ok := l.declare(b, l.declaredOf(kind), base)
	if !ok {
		return
	}
	var raw groupHCL
	var diags hcl.Diagnostics
	switch kind {
	case SetRight:
		var r rightHCL
		diags = decodeBody(b.Body, l.ctx, &r, "")
		raw = groupHCL{Target: r.Target, Name: r.Name, Members: r.Members, Exclusive: r.Exclusive}
	case SetSudoRole:
		var r sudoRoleHCL
		diags = decodeBody(b.Body, l.ctx, &r, "")
		raw = groupHCL{Target: r.Target, DN: r.DN, Members: r.Members, Exclusive: r.Exclusive}
	default:
		diags = decodeBody(b.Body, l.ctx, &raw, "")
	}
	l.diags = append(l.diags, diags...)
	at := attrsOf(b)
	hint := map[string]string{
		SetGroup:    "the directory or host the group is on, e.g. target = target.ldap.corp",
		SetRight:    "the Windows host whose local security policy holds the right, e.g. target = target.winrm.web01",
		SetSudoRole: "the directory holding the sudoRole entry, e.g. target = target.ldap.corp",
	}[kind]
	te, instances, r, ok := l.blockTarget(b, at, raw.Target, hint)
	if !ok {
		d.broken = true
		return
	}
	if !slices.Contains(setTargets[kind], te.kind) {
		what := map[string]string{
			SetRight:    "a right is a Windows user right (local security policy) and needs a winrm target",
			SetSudoRole: "a sudo_role is an LDAP sudoRole entry and needs an ldap or ldif target",
		}[kind]
		l.errorf(at.rangeOf("target"), "Unsupported target for a "+kind, "target.%s.%s is a target of kind %q: %s.", r.names[0], r.names[1], te.kind, what)
		d.broken = true
		return
	}

	// What identifies the set on its target depends on the kind.
	var identity string
	bad := false
	switch {
	case kind == SetRight:
		if !at.has("name") || decoded(at, diags, "name") && strings.TrimSpace(raw.Name) == "" {
			l.errorf(at.rangeOf("name"), "Missing right name", "A right needs name = \"SeBackupPrivilege\" (a Windows privilege or logon right constant).")
			bad = true
		} else if decoded(at, diags, "name") {
			canon, known := CanonicalRight(raw.Name)
			if !known {
				l.errorf(at.rangeOf("name"), "Unknown right name",
					"%q is not a Windows privilege or logon right constant%s; rights are named like SeBackupPrivilege, SeDebugPrivilege or SeRemoteInteractiveLogonRight (docs/language.md lists them all).",
					raw.Name, suggest(raw.Name, WindowsRights))
				bad = true
			}
			raw.Name = canon
		}
		identity = "right:" + strings.ToLower(raw.Name)
	case te.kind == KindWinRM:
		if raw.DN != "" {
			l.errorf(at.rangeOf("dn"), "Unsupported argument for a Windows group", "A group on a winrm target is named by name (a SID or a local group name), not dn.")
			bad = true
		}
		if raw.Placeholder != "" {
			l.errorf(at.rangeOf("placeholder"), "Unsupported argument for a Windows group", "placeholder applies to directory groups (groupOfNames) only.")
			bad = true
		}
		if !at.has("name") || decoded(at, diags, "name") && strings.TrimSpace(raw.Name) == "" {
			l.errorf(at.rangeOf("name"), "Missing group name", "A group on a winrm target needs name = \"S-1-5-32-544\" (a SID, which survives localised Windows) or a local group name.")
			bad = true
		}
		identity = strings.ToLower(raw.Name)
	default:
		if raw.EndSessions {
			l.errorf(at.rangeOf("end_sessions"), "Unsupported argument for a directory group", "end_sessions logs off a removed member's sessions on a Windows host; it applies to groups on winrm targets only.")
			bad = true
		}
		dn, err := ldap.ParseDN(raw.DN)
		what := "group"
		example := "cn=...,dc=..."
		if kind == SetSudoRole {
			what, example = "sudo_role", "cn=db-root,ou=SUDOers,dc=example,dc=org"
		}
		switch {
		case at.has("dn") && !decoded(at, diags, "dn"):
			bad = true // reported by the decoder
		case !at.has("dn") || strings.TrimSpace(raw.DN) == "":
			l.errorf(at.rangeOf("dn"), "Missing "+what+" dn", "A %s on a %s target needs dn = \"%s\".", what, te.kind, example)
			bad = true
		case err != nil:
			l.errorf(at.rangeOf("dn"), "Invalid dn", "%q is not a distinguished name: %v.", raw.DN, err)
			bad = true
		default:
			identity = strings.ToLower(dn.String())
			if kind == SetSudoRole {
				identity = "sudo_role:" + identity
			}
		}
		if raw.Placeholder != "" {
			if _, err := ldap.ParseDN(raw.Placeholder); err != nil {
				l.errorf(at.rangeOf("placeholder"), "Invalid placeholder", "placeholder must be the DN of an entry kept in the group so it never becomes empty; %q is not a DN.", raw.Placeholder)
				bad = true
			}
		}
	}
	for _, m := range raw.Members {
		if strings.TrimSpace(m) == "" {
			l.errorf(at.rangeOf("members"), "Empty member", "members must not contain an empty string.")
			bad = true
		}
	}
	// A broken target was reported at the target; the set's own
	// attributes were still checked above.
	if bad || te.broken || diags.HasErrors() {
		d.broken = true
		return
	}

	for _, t := range instances {
		g := &Group{
			Kind: kind,
			Name: name, BaseAddr: base, Addr: base, Target: t,
			DN: raw.DN, GroupName: raw.Name, Members: slices.Clone(raw.Members), Exclusive: raw.Exclusive,
			Attributes:   GroupAttributes{Placeholder: raw.Placeholder, EndSessions: raw.EndSessions},
			DeclRange:    b.DefRange,
			MembersRange: *at.rangeOf("members"),
		}
		if t.Key != "" && !r.hasKey {
			g.Key = t.Key
			g.Addr = instanceAddr(base, t.Key)
		}
		key := t.Addr + "\x00" + identity
		if other, dup := l.managed[key]; dup {
			noun := map[string]string{SetGroup: "group", SetRight: "right", SetSudoRole: "sudoRole"}[kind]
			l.errorf(b.DefRange.Ptr(), map[string]string{SetGroup: "Group", SetRight: "Right", SetSudoRole: "Sudo role"}[kind]+" managed twice",
				"%s manages the same %s on %s as %s; one %s block per real %s, or the two would fight.", g.Addr, noun, t.Addr, other, kind, noun)
			d.broken = true
			return
		}
		l.managed[key] = g.Addr
		l.cfg.Groups = append(l.cfg.Groups, g)
	}
}

type accountHCL struct {
	Target         hcl.Expression `hcl:"target"`
	Name           string         `hcl:"name,optional"`
	DN             string         `hcl:"dn,optional"`
	RotatePassword bool           `hcl:"rotate_password,optional"`
	Ephemeral      bool           `hcl:"ephemeral,optional"`
	Pattern        string         `hcl:"pattern,optional"`
	Base           string         `hcl:"base,optional"`
}

// account decodes an account block: one Account per target instance.
func (l *loader) account(b *hcl.Block) {
	name := b.Labels[0]
	base := "account." + name
	d, ok := l.declare(b, l.accounts, base)
	if !ok {
		return
	}
	var raw accountHCL
	diags := decodeBody(b.Body, l.ctx, &raw, "")
	l.diags = append(l.diags, diags...)
	at := attrsOf(b)
	te, instances, r, ok := l.blockTarget(b, at, raw.Target, "the host or directory the account is on, e.g. target = target.winrm.web01")
	if !ok {
		d.broken = true
		return
	}
	bad := false
	var identity string
	switch {
	case raw.Ephemeral:
		identity, bad = l.ephemeralAccount(at, diags, te.kind, &raw)
	case te.kind == KindWinRM:
		if at.has("dn") {
			l.errorf(at.rangeOf("dn"), "Unsupported argument for a Windows account", "An account on a winrm target is named by name (the local account's name), not dn.")
			bad = true
		}
		if !at.has("name") || decoded(at, diags, "name") && strings.TrimSpace(raw.Name) == "" {
			l.errorf(at.rangeOf("name"), "Missing account name", "An account on a winrm target needs name = \"jit-admin\" (the local account jitform enables and disables).")
			bad = true
		}
		identity = strings.ToLower(raw.Name)
	default:
		if at.has("name") {
			l.errorf(at.rangeOf("name"), "Unsupported argument for a directory account", "An account on target kind %q is named by dn (the account entry's DN), not name.", te.kind)
			bad = true
		}
		dn, err := ldap.ParseDN(raw.DN)
		switch {
		case at.has("dn") && !decoded(at, diags, "dn"):
			bad = true
		case !at.has("dn") || strings.TrimSpace(raw.DN) == "":
			l.errorf(at.rangeOf("dn"), "Missing account dn", "An account on target kind %q needs dn = \"uid=jit-admin,ou=people,dc=example,dc=org\".", te.kind)
			bad = true
		case err != nil:
			l.errorf(at.rangeOf("dn"), "Invalid dn", "%q is not a distinguished name: %v.", raw.DN, err)
			bad = true
		default:
			identity = strings.ToLower(dn.String())
		}
	}
	if !raw.Ephemeral {
		for _, attr := range []string{"pattern", "base"} {
			if at.has(attr) {
				l.errorf(at.rangeOf(attr), attr+" without ephemeral",
					"%s is for an ephemeral account (ephemeral = true: an account created for each grant and deleted after); an account that exists is named by %s.",
					attr, map[bool]string{true: "name", false: "dn"}[te.kind == KindWinRM])
				bad = true
			}
		}
	}
	if bad || te.broken || diags.HasErrors() {
		d.broken = true
		return
	}
	if raw.Ephemeral {
		// A created account is useless without a password, and nobody
		// but the grant's principal may learn it.
		raw.RotatePassword = true
	}
	l.rotating[base] = raw.RotatePassword
	for _, t := range instances {
		a := &Account{
			Name: name, BaseAddr: base, Addr: base, Target: t,
			AccountName: raw.Name, DN: raw.DN, RotatePassword: raw.RotatePassword,
			Ephemeral: raw.Ephemeral, Pattern: raw.Pattern, Base: raw.Base, DeclRange: b.DefRange,
		}
		if t.Key != "" && !r.hasKey {
			a.Key = t.Key
			a.Addr = instanceAddr(base, t.Key)
		}
		key := t.Addr + "\x00account:" + identity
		if other, dup := l.managed[key]; dup {
			l.errorf(b.DefRange.Ptr(), "Account managed twice",
				"%s manages the same account on %s as %s; one account block per real account, or the two would fight.", a.Addr, t.Addr, other)
			d.broken = true
			return
		}
		l.managed[key] = a.Addr
		l.cfg.Accounts = append(l.cfg.Accounts, a)
	}
}

type actorHCL struct {
	SSHKey string `hcl:"ssh_key"`
}

func (l *loader) actor(b *hcl.Block) {
	name := b.Labels[0]
	d, ok := l.declare(b, l.actors, "actor."+name)
	if !ok {
		return
	}
	var raw actorHCL
	diags := decodeBody(b.Body, l.ctx, &raw, "")
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		d.broken = true
		return
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(raw.SSHKey)); err != nil {
		l.errorf(attrsOf(b).rangeOf("ssh_key"), "Invalid ssh_key",
			"ssh_key must be a public key in authorized_keys format, like \"ssh-ed25519 AAAAC3Nza... carol@laptop\": %v.", err)
		d.broken = true
		return
	}
	l.cfg.Actors = append(l.cfg.Actors, &Actor{Name: name, SSHKey: raw.SSHKey, DeclRange: b.DefRange})
}

type breakGlassHCL struct {
	MaxDuration string `hcl:"max_duration"`
	MaxPerDay   string `hcl:"max_per_day,optional"`
}

type policyHCL struct {
	Groups        hcl.Expression `hcl:"groups,optional"`
	Rights        hcl.Expression `hcl:"rights,optional"`
	SudoRoles     hcl.Expression `hcl:"sudo_roles,optional"`
	Accounts      hcl.Expression `hcl:"accounts,optional"`
	Eligible      []string       `hcl:"eligible"`
	MaxDuration   string         `hcl:"max_duration"`
	Approvals     *int           `hcl:"approvals,optional"`
	Approvers     []string       `hcl:"approvers,optional"`
	TicketPattern string         `hcl:"ticket_pattern,optional"`
	Windows       hcl.Expression `hcl:"windows,optional"`
	Approval      string         `hcl:"approval,optional"`
	RequestTTL    string         `hcl:"request_ttl,optional"`
	MaxActive     *int           `hcl:"max_active,optional"`
	// RequireSecurityKey: true, false, "presence" or "user_verification".
	RequireSecurityKey hcl.Expression `hcl:"require_security_key,optional"`
	BreakGlass         *breakGlassHCL `hcl:"break_glass,block"`
}

// Policy defaults, documented in docs/language.md.
const (
	DefaultApprovals  = 1
	DefaultRequestTTL = 24 * time.Hour
)

func (l *loader) policy(b *hcl.Block) {
	name := b.Labels[0]
	addr := "policy." + name
	d, ok := l.declare(b, l.policies, addr)
	if !ok {
		return
	}
	var raw policyHCL
	diags := decodeBody(b.Body, l.ctx, &raw, "")
	l.diags = append(l.diags, diags...)
	at := attrsOf(b)
	errs := diags.HasErrors()
	fail := func(attr, summary, format string, args ...any) {
		l.errorf(at.rangeOf(attr), summary, format, args...)
		errs = true
	}

	p := &Policy{
		Name: name, Addr: addr,
		Eligible:  raw.Eligible,
		Approvals: DefaultApprovals, Approvers: raw.Approvers,
		Approval: raw.Approval, RequestTTL: DefaultRequestTTL,
		DeclRange: b.DefRange, Ranges: at.ranges,
	}
	if !at.has("groups") && !at.has("rights") && !at.has("accounts") && !at.has("sudo_roles") {
		l.errorf(b.DefRange.Ptr(), "Missing required argument",
			"policy %q grants nothing: set at least one of groups, rights, accounts, sudo_roles, e.g. groups = [group.web01_admins].", name)
		errs = true
	}
	for _, list := range []struct {
		attr, root string
		expr       hcl.Expression
		into       *[]string
	}{
		{"groups", SetGroup, raw.Groups, &p.Groups},
		{"rights", SetRight, raw.Rights, &p.Rights},
		{"sudo_roles", SetSudoRole, raw.SudoRoles, &p.SudoRoles},
		{"accounts", "account", raw.Accounts, &p.Accounts},
	} {
		if !at.has(list.attr) || list.expr == nil {
			continue
		}
		elems, ediags := hcl.ExprList(list.expr)
		if ediags.HasErrors() {
			fail(list.attr, "Invalid "+list.attr, "%s must be a list of %s references, like [%s].", list.attr, list.root, strings.Replace(refShapes[list.root], "NAME", "x", 1))
		}
		decl := l.declaredOf(list.root)
		listed := map[string]bool{}
		for _, e := range elems {
			r, ok := l.parseRef(e, list.attr, list.root, false)
			if !ok {
				errs = true
				continue
			}
			a := list.root + "." + r.names[0]
			switch {
			case decl[r.names[0]] == nil:
				l.undeclared(r, a, names(list.root+".", decl))
				errs = true
			case listed[a]:
				l.errorf(r.rng.Ptr(), "Duplicate "+list.root, "%s is listed twice in %s.", a, list.attr)
				errs = true
			default:
				listed[a] = true
				*list.into = append(*list.into, a)
			}
		}
	}

	for _, e := range raw.Eligible {
		if dn, isGroup := strings.CutPrefix(e, "group:"); isGroup {
			if _, err := ldap.ParseDN(dn); err != nil || strings.TrimSpace(dn) == "" {
				fail("eligible", "Invalid eligible entry", "%q: a directory group is written \"group:<DN>\", and %q is not a DN.", e, dn)
			}
		} else if strings.TrimSpace(e) == "" {
			fail("eligible", "Invalid eligible entry", "eligible must not contain an empty string.")
		}
	}

	if decoded(at, diags, "max_duration") {
		if md, err := ParseDuration(raw.MaxDuration); err != nil {
			fail("max_duration", "Invalid max_duration", "%v.", err)
		} else if md <= 0 {
			fail("max_duration", "Invalid max_duration", "max_duration must be longer than zero.")
		} else {
			p.MaxDuration = md
		}
	}

	switch p.Approval {
	case "":
		p.Approval = ApprovalRepository
	case ApprovalRepository, ApprovalLedger:
	default:
		fail("approval", "Unknown approval mode", "approval must be \"repository\" or \"ledger\"%s.",
			suggest(p.Approval, []string{ApprovalRepository, ApprovalLedger}))
	}

	distinct := map[string]bool{}
	for _, a := range raw.Approvers {
		if strings.TrimSpace(a) == "" {
			fail("approvers", "Invalid approver", "approvers must not contain an empty string.")
			continue
		}
		if distinct[strings.ToLower(a)] {
			fail("approvers", "Duplicate approver", "%q is listed twice in approvers.", a)
			continue
		}
		distinct[strings.ToLower(a)] = true
		if p.Approval == ApprovalLedger && l.actors[a] == nil {
			// A warning: the policy still works with the other approvers.
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Approver is not an actor",
				Detail:   fmt.Sprintf("policy %s takes ledger approvals, which are signed by declared actors; %q is not one, so cannot approve (declare actor %q { ssh_key = \"...\" }).", name, a, a),
				Subject:  at.rangeOf("approvers"),
			})
		}
	}
	if raw.Approvals != nil {
		p.Approvals = *raw.Approvals
	}
	switch {
	case p.Approvals < 0:
		fail("approvals", "Invalid approvals", "approvals must be zero or more.")
	case p.Approvals > len(distinct):
		fail("approvals", "Approvals cannot be met",
			"approvals = %d but approvers lists %d distinct person(s): no grant could ever be approved. List more approvers, or set approvals = 0 for grants that need no approval.", p.Approvals, len(distinct))
	}

	if decoded(at, diags, "ticket_pattern") {
		re, err := regexp.Compile(raw.TicketPattern)
		if err != nil {
			fail("ticket_pattern", "Invalid ticket_pattern", "ticket_pattern is not a regular expression: %v.", err)
		}
		p.TicketPattern = re
	}

	if at.has("windows") && raw.Windows != nil {
		p.Windows, errs = l.windows(raw.Windows, errs)
	}

	if raw.RequestTTL != "" {
		if ttl, err := ParseDuration(raw.RequestTTL); err != nil || ttl <= 0 {
			fail("request_ttl", "Invalid request_ttl", "request_ttl must be a duration longer than zero, like \"24h\".")
		} else {
			p.RequestTTL = ttl
		}
	}
	if raw.MaxActive != nil {
		if *raw.MaxActive < 0 {
			fail("max_active", "Invalid max_active", "max_active must be zero (unlimited) or more.")
		}
		p.MaxActive = *raw.MaxActive
	}
	if at.has("require_security_key") && raw.RequireSecurityKey != nil {
		if mode, ok := l.securityKeyMode(raw.RequireSecurityKey); ok {
			p.RequireSecurityKey = mode
			switch {
			case mode == "":
			case p.Approval == ApprovalLedger || raw.BreakGlass != nil:
				errs = l.securityKeyActors(p, at) || errs
			default:
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "require_security_key has no effect",
					Detail: fmt.Sprintf("policy %s takes approvals by repository review and has no break_glass block, so nothing under it is signed in the ledger: "+
						"require_security_key applies to ledger requests, approvals and break-glass reviews (set approval = %q).", name, ApprovalLedger),
					Subject: at.rangeOf("require_security_key"),
				})
			}
		} else {
			errs = true
		}
	}
	if raw.BreakGlass != nil && decoded(at, diags, "break_glass.max_duration") {
		md, err := ParseDuration(raw.BreakGlass.MaxDuration)
		if err != nil || md <= 0 {
			fail("break_glass.max_duration", "Invalid break_glass max_duration", "break_glass max_duration must be a duration longer than zero, like \"1h\".")
		}
		p.BreakGlass = &BreakGlass{MaxDuration: md}
		if raw.BreakGlass.MaxPerDay != "" {
			switch mpd, err := ParseDuration(raw.BreakGlass.MaxPerDay); {
			case err != nil || mpd <= 0:
				fail("break_glass.max_per_day", "Invalid break_glass max_per_day", "break_glass max_per_day must be a duration longer than zero, like \"2h\": each principal's break-glass time under this policy in any 24 hours.")
			case mpd < md:
				fail("break_glass.max_per_day", "Invalid break_glass max_per_day", "break_glass max_per_day (%s) is shorter than its max_duration (%s): no break-glass grant of the longest allowed duration could ever be made.", raw.BreakGlass.MaxPerDay, raw.BreakGlass.MaxDuration)
			case mpd > 24*time.Hour:
				fail("break_glass.max_per_day", "Invalid break_glass max_per_day", "break_glass max_per_day (%s) is longer than a day, so it limits nothing.", raw.BreakGlass.MaxPerDay)
			default:
				p.BreakGlass.MaxPerDay = mpd
			}
		}
	}

	d.policy = p
	if errs {
		d.broken = true
		return
	}
	l.cfg.Policies = append(l.cfg.Policies, p)
}

// windows decodes the windows list, keeping each element's range.
func (l *loader) windows(expr hcl.Expression, errs bool) ([]Window, bool) {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		// Not a literal list (a function call, say): evaluate it whole.
		var specs []string
		if d := gohcl.DecodeExpression(guardExpr(expr, "windows"), l.ctx, &specs); d.HasErrors() {
			l.diags = append(l.diags, d...)
			return nil, true
		}
		var out []Window
		for _, s := range specs {
			w, ok := l.window(s, expr.Range())
			errs = errs || !ok
			out = append(out, w)
		}
		return out, errs
	}
	var out []Window
	for _, e := range elems {
		var s string
		if d := gohcl.DecodeExpression(guardExpr(e, "windows"), l.ctx, &s); d.HasErrors() {
			l.diags = append(l.diags, d...)
			errs = true
			continue
		}
		w, ok := l.window(s, e.Range())
		errs = errs || !ok
		out = append(out, w)
	}
	return out, errs
}

func (l *loader) window(spec string, rng hcl.Range) (Window, bool) {
	w, err := ParseWindow(spec)
	w.Range = rng
	if err != nil {
		l.errorf(rng.Ptr(), "Invalid window", "%v.", err)
		return w, false
	}
	return w, true
}

type grantHCL struct {
	Policy     hcl.Expression `hcl:"policy"`
	Principal  string         `hcl:"principal"`
	Start      string         `hcl:"start"`
	Duration   string         `hcl:"duration"`
	Ticket     string         `hcl:"ticket,optional"`
	Reason     string         `hcl:"reason,optional"`
	ApprovedBy []string       `hcl:"approved_by,optional"`
}

// grantDecoded is the part of a grant block's decoding that depends on no
// other block: its values and their own checks. LoadFiles does it for every
// grant while the files are parsed, on every core (a repository may hold
// 100,000 grants); grant then resolves the policy and records the grant.
type grantDecoded struct {
	raw   grantHCL
	at    blockAttrs
	start time.Time
	dur   time.Duration
	// decodeDiags are decodeBody's; checkDiags the value checks', reported
	// after the policy's (the order a sequential decoding gives).
	decodeDiags, checkDiags hcl.Diagnostics
	errs                    bool
}

func decodeGrant(b *hcl.Block, ctx *hcl.EvalContext) *grantDecoded {
	gd := &grantDecoded{at: attrsOf(b)}
	gd.decodeDiags = decodeBody(b.Body, ctx, &gd.raw, "")
	gd.errs = gd.decodeDiags.HasErrors()
	raw, at := &gd.raw, gd.at
	fail := func(attr, summary, format string, args ...any) {
		gd.checkDiags = append(gd.checkDiags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: at.rangeOf(attr),
		})
		gd.errs = true
	}
	if at.has("principal") && strings.TrimSpace(raw.Principal) == "" {
		fail("principal", "Empty principal", "principal must name who receives the grant.")
	}
	if decoded(at, gd.decodeDiags, "start") {
		if start, err := time.Parse(time.RFC3339, raw.Start); err != nil {
			fail("start", "Invalid start", "start %q is not an RFC 3339 time; write it in UTC like \"2026-11-23T09:00:00Z\".", raw.Start)
		} else if _, off := start.Zone(); off != 0 {
			fail("start", "Invalid start", "start %q is not in UTC; write it like %q.", raw.Start, start.UTC().Format(time.RFC3339))
		} else {
			gd.start = start.UTC()
		}
		if usesFunction(attrExpr(b, "start"), "plantimestamp") {
			gd.checkDiags = append(gd.checkDiags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Grant start uses plantimestamp()",
				Detail: fmt.Sprintf("grant.%s starts relative to the time of each plan, so its window moves with every plan and never opens or closes for good. "+
					"Use this for demos such as the quickstart only; a real grant has a fixed start such as \"2026-11-23T09:00:00Z\".", b.Labels[0]),
				Subject: at.rangeOf("start"),
			})
		}
	}
	if decoded(at, gd.decodeDiags, "duration") {
		if dur, err := ParseDuration(raw.Duration); err != nil {
			fail("duration", "Invalid duration", "%v.", err)
		} else if dur <= 0 {
			fail("duration", "Invalid duration", "duration must be longer than zero.")
		} else {
			gd.dur = dur
		}
	}
	for _, a := range raw.ApprovedBy {
		if strings.TrimSpace(a) == "" {
			fail("approved_by", "Invalid approver", "approved_by must not contain an empty string.")
		}
	}
	return gd
}

// grant records a grant block; gd is its decoding (decodeGrant), or nil to
// decode it here.
func (l *loader) grant(b *hcl.Block, gd *grantDecoded) {
	name := b.Labels[0]
	addr := "grant." + name
	d, ok := l.declare(b, l.grants, addr)
	if !ok {
		return
	}
	if gd == nil {
		gd = decodeGrant(b, l.ctx)
	}
	raw, at := &gd.raw, gd.at
	l.diags = append(l.diags, gd.decodeDiags...)
	errs := gd.errs
	if !l.require(b, at, "policy", "the policy this grant is made under, e.g. policy = policy.web_maintenance") {
		errs = true
	}
	g := &Grant{
		Name: name, Addr: addr,
		Principal: raw.Principal, Ticket: raw.Ticket, Reason: raw.Reason, ApprovedBy: raw.ApprovedBy,
		Start: gd.start, Duration: gd.dur,
		DeclRange: b.DefRange, Ranges: at.ranges,
	}

	if at.has("policy") && raw.Policy != nil {
		if r, ok := l.parseRef(raw.Policy, "policy", "policy", false); !ok {
			errs = true
		} else if pd := l.policies[r.names[0]]; pd == nil {
			l.undeclared(r, "policy."+r.names[0], names("policy.", l.policies))
			errs = true
		} else {
			g.Policy = "policy." + r.names[0]
			errs = errs || pd.broken
		}
	}
	l.diags = append(l.diags, gd.checkDiags...)
	if pd := l.policies[strings.TrimPrefix(g.Policy, "policy.")]; g.Policy != "" && pd != nil && pd.policy != nil && at.has("principal") {
		// A rotated password is delivered only to the grant's principal,
		// encrypted to the SSH key of the actor of that name.
		for _, acc := range pd.policy.Accounts {
			if !l.rotating[acc] {
				continue
			}
			if !l.hasActorFor(raw.Principal) {
				l.errorf(at.rangeOf("principal"), "Principal has no key for the account password",
					"%s grants %s, which has rotate_password = true: its new password is delivered only to the grant's principal, encrypted to that actor's ssh_key, and no actor %q is declared. Declare actor %q { ssh_key = \"ssh-ed25519 ...\" }.",
					addr, acc, ActorNameOf(raw.Principal), ActorNameOf(raw.Principal))
				errs = true
				break
			}
		}
	}
	if errs {
		d.broken = true
		return
	}
	l.cfg.Grants = append(l.cfg.Grants, g)
}

// hasActorFor reports whether an actor is declared for the principal
// (Config.ActorForPrincipal's rule: its name, or its name without domain).
func (l *loader) hasActorFor(principal string) bool {
	if l.actors[principal] != nil {
		return true
	}
	name := ActorNameOf(principal)
	for n := range l.actors {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// usesFunction reports whether expr calls the named function anywhere.
func usesFunction(expr hclsyntax.Expression, fn string) bool {
	if expr == nil {
		return false
	}
	// The common case, a quoted string of literal text, calls nothing
	// (walking it was a tenth of decoding 100,000 grants).
	if t, ok := expr.(*hclsyntax.TemplateExpr); ok && !slices.ContainsFunc(t.Parts, func(e hclsyntax.Expression) bool {
		_, lit := e.(*hclsyntax.LiteralValueExpr)
		return !lit
	}) {
		return false
	}
	found := false
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && c.Name == fn {
			found = true
		}
		return nil
	})
	return found
}

// decoded reports whether the attribute was written and decoded without an
// error, so that checks of its value do not repeat a decoding error.
func decoded(at blockAttrs, diags hcl.Diagnostics, attr string) bool {
	rng, ok := at.ranges.Of(attr)
	if !ok {
		return false
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Subject != nil && d.Subject.Filename == rng.Filename &&
			d.Subject.Start.Byte >= rng.Start.Byte && d.Subject.End.Byte <= rng.End.Byte {
			return false
		}
	}
	return true
}

// require reports a missing reference argument. gohcl fills a missing
// hcl.Expression field with a null expression instead of reporting it, so
// blocks whose references are expressions check their own.
func (l *loader) require(b *hcl.Block, at blockAttrs, attr, hint string) bool {
	if at.has(attr) {
		return true
	}
	l.errorf(b.DefRange.Ptr(), "Missing required argument",
		"The argument %q is required in %s %q: %s.", attr, b.Type, b.Labels[0], hint)
	return false
}

// securityKeyMode decodes require_security_key: true (SecurityKeyPresence),
// false (none), or one of the strings "presence" and "user_verification".
func (l *loader) securityKeyMode(expr hcl.Expression) (string, bool) {
	v, diags := guardExpr(expr, "require_security_key").Value(l.ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return "", false
	}
	switch {
	case v.IsNull() || !v.IsKnown():
	case v.Type() == cty.Bool:
		if v.True() {
			return SecurityKeyPresence, true
		}
		return "", true
	case v.Type() == cty.String:
		switch s := v.AsString(); s {
		case SecurityKeyPresence, SecurityKeyUserVerification:
			return s, true
		default:
			l.errorf(expr.Range().Ptr(), "Invalid require_security_key",
				"require_security_key must be true, false, %q or %q, not %q%s.", SecurityKeyPresence, SecurityKeyUserVerification, s,
				suggest(s, []string{SecurityKeyPresence, SecurityKeyUserVerification}))
			return "", false
		}
	}
	l.errorf(expr.Range().Ptr(), "Invalid require_security_key",
		"require_security_key must be true, false, %q (a touch of the key) or %q (a touch and a PIN or biometric).",
		SecurityKeyPresence, SecurityKeyUserVerification)
	return "", false
}

// securityKeyActors: under require_security_key, every declared actor the
// policy lists as an approver or eligible requester must have a security-key
// ssh_key, or their requests and approvals could never count. It reports
// whether it found one that does not.
func (l *loader) securityKeyActors(p *Policy, at blockAttrs) bool {
	if p.RequireSecurityKey == "" {
		return false
	}
	bad := false
	for _, list := range []struct {
		attr, role string
		names      []string
	}{{"approvers", "approver", p.Approvers}, {"eligible", "eligible actor", p.Eligible}} {
		for _, name := range list.names {
			a := l.cfg.ActorByName(name)
			if a == nil {
				continue
			}
			keyType := ""
			if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a.SSHKey)); err == nil {
				keyType = pub.Type()
			}
			if IsSecurityKeyType(keyType) {
				continue
			}
			l.errorf(at.rangeOf(list.attr), "Actor without a security key",
				"policy %s sets require_security_key, but %s %q has a %s ssh_key (actor %q at %s:%d), so their signatures could never count. "+
					"Declare the actor's security key (ssh-keygen -t ed25519-sk makes one: sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com), or remove them from %s.",
				p.Name, list.role, name, keyType, name, a.DeclRange.Filename, a.DeclRange.Start.Line, list.attr)
			bad = true
		}
	}
	return bad
}
