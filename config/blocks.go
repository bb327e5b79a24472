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

func (l *loader) group(b *hcl.Block) {
	name := b.Labels[0]
	base := "group." + name
	d, ok := l.declare(b, l.groups, base)
	if !ok {
		return
	}
	var raw groupHCL
	diags := decodeBody(b.Body, l.ctx, &raw, "")
	l.diags = append(l.diags, diags...)
	at := attrsOf(b)
	if !l.require(b, at, "target", "the directory or host the group is on, e.g. target = target.ldap.corp") {
		d.broken = true
		return
	}
	r, ok := l.parseRef(raw.Target, "target", "target", true)
	if !ok {
		d.broken = true
		return
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
		d.broken = true
		return
	}
	if !slices.Contains(targetKinds, te.kind) {
		d.broken = true // the unknown kind was reported at the target
		return
	}
	instances := te.instances
	if r.hasKey && !te.broken {
		if te.hosts == nil {
			l.errorf(r.rng.Ptr(), "Invalid reference", "%s is a single host; refer to it as %s, without [\"%s\"].", taddr, taddr, r.key)
			d.broken = true
			return
		}
		i := slices.Index(te.hosts, r.key)
		if i < 0 {
			l.errorf(r.rng.Ptr(), "Reference to an undeclared host", "%s has no host %q%s; its hosts are %s.",
				taddr, r.key, suggest(r.key, te.hosts), strings.Join(te.hosts, ", "))
			d.broken = true
			return
		}
		instances = instances[i : i+1]
	}

	// What identifies the group on its target depends on the kind.
	var identity string
	bad := false
	switch te.kind {
	case KindWinRM:
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
		switch {
		case at.has("dn") && !decoded(at, diags, "dn"):
			bad = true // reported by the decoder
		case !at.has("dn") || strings.TrimSpace(raw.DN) == "":
			l.errorf(at.rangeOf("dn"), "Missing group dn", "A group on a %s target needs dn = \"cn=...,dc=...\".", te.kind)
			bad = true
		case err != nil:
			l.errorf(at.rangeOf("dn"), "Invalid dn", "%q is not a distinguished name: %v.", raw.DN, err)
			bad = true
		default:
			identity = strings.ToLower(dn.String())
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
	// A broken target was reported at the target; the group's own
	// attributes were still checked above.
	if bad || te.broken || diags.HasErrors() {
		d.broken = true
		return
	}

	for _, t := range instances {
		g := &Group{
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
			l.errorf(b.DefRange.Ptr(), "Group managed twice",
				"%s manages the same group on %s as %s; one group block per real group, or the two would fight.", g.Addr, t.Addr, other)
			d.broken = true
			return
		}
		l.managed[key] = g.Addr
		l.cfg.Groups = append(l.cfg.Groups, g)
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
	Groups        hcl.Expression `hcl:"groups"`
	Eligible      []string       `hcl:"eligible"`
	MaxDuration   string         `hcl:"max_duration"`
	Approvals     *int           `hcl:"approvals,optional"`
	Approvers     []string       `hcl:"approvers,optional"`
	TicketPattern string         `hcl:"ticket_pattern,optional"`
	Windows       hcl.Expression `hcl:"windows,optional"`
	Approval      string         `hcl:"approval,optional"`
	RequestTTL    string         `hcl:"request_ttl,optional"`
	MaxActive     *int           `hcl:"max_active,optional"`
	BreakGlass    *breakGlassHCL `hcl:"break_glass,block"`
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

	if !l.require(b, at, "groups", "the groups this policy grants, e.g. groups = [group.web01_admins]") {
		errs = true
	}
	p := &Policy{
		Name: name, Addr: addr,
		Eligible:  raw.Eligible,
		Approvals: DefaultApprovals, Approvers: raw.Approvers,
		Approval: raw.Approval, RequestTTL: DefaultRequestTTL,
		DeclRange: b.DefRange, Ranges: at.ranges,
	}

	if at.has("groups") && raw.Groups != nil {
		listed := map[string]bool{}
		elems, ediags := hcl.ExprList(raw.Groups)
		if ediags.HasErrors() {
			fail("groups", "Invalid groups", "groups must be a list of group references, like [group.web01_admins].")
		}
		for _, e := range elems {
			r, ok := l.parseRef(e, "groups", "group", false)
			if !ok {
				errs = true
				continue
			}
			gaddr := "group." + r.names[0]
			gd := l.groups[r.names[0]]
			switch {
			case gd == nil:
				l.undeclared(r, gaddr, names("group.", l.groups))
				errs = true
			case listed[gaddr]:
				l.errorf(r.rng.Ptr(), "Duplicate group", "%s is listed twice in groups.", gaddr)
				errs = true
			default:
				listed[gaddr] = true
				p.Groups = append(p.Groups, gaddr)
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

func (l *loader) grant(b *hcl.Block) {
	name := b.Labels[0]
	addr := "grant." + name
	d, ok := l.declare(b, l.grants, addr)
	if !ok {
		return
	}
	var raw grantHCL
	diags := decodeBody(b.Body, l.ctx, &raw, "")
	l.diags = append(l.diags, diags...)
	at := attrsOf(b)
	errs := diags.HasErrors()
	fail := func(attr, summary, format string, args ...any) {
		l.errorf(at.rangeOf(attr), summary, format, args...)
		errs = true
	}
	if !l.require(b, at, "policy", "the policy this grant is made under, e.g. policy = policy.web_maintenance") {
		errs = true
	}
	g := &Grant{
		Name: name, Addr: addr,
		Principal: raw.Principal, Ticket: raw.Ticket, Reason: raw.Reason, ApprovedBy: raw.ApprovedBy,
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
	if at.has("principal") && strings.TrimSpace(raw.Principal) == "" {
		fail("principal", "Empty principal", "principal must name who receives the grant.")
	}
	if decoded(at, diags, "start") {
		if start, err := time.Parse(time.RFC3339, raw.Start); err != nil {
			fail("start", "Invalid start", "start %q is not an RFC 3339 time; write it in UTC like \"2026-11-23T09:00:00Z\".", raw.Start)
		} else if _, off := start.Zone(); off != 0 {
			fail("start", "Invalid start", "start %q is not in UTC; write it like %q.", raw.Start, start.UTC().Format(time.RFC3339))
		} else {
			g.Start = start.UTC()
		}
		if usesFunction(attrExpr(b, "start"), "plantimestamp") {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Grant start uses plantimestamp()",
				Detail: fmt.Sprintf("%s starts relative to the time of each plan, so its window moves with every plan and never opens or closes for good. "+
					"Use this for demos such as the quickstart only; a real grant has a fixed start such as \"2026-11-23T09:00:00Z\".", addr),
				Subject: at.rangeOf("start"),
			})
		}
	}
	if decoded(at, diags, "duration") {
		if dur, err := ParseDuration(raw.Duration); err != nil {
			fail("duration", "Invalid duration", "%v.", err)
		} else if dur <= 0 {
			fail("duration", "Invalid duration", "duration must be longer than zero.")
		} else {
			g.Duration = dur
		}
	}
	for _, a := range raw.ApprovedBy {
		if strings.TrimSpace(a) == "" {
			fail("approved_by", "Invalid approver", "approved_by must not contain an empty string.")
		}
	}
	if errs {
		d.broken = true
		return
	}
	l.cfg.Grants = append(l.cfg.Grants, g)
}

// usesFunction reports whether expr calls the named function anywhere.
func usesFunction(expr hclsyntax.Expression, fn string) bool {
	if expr == nil {
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
	rng, ok := at.ranges[attr]
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
