package planner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/parallel"
	"github.com/jitform/jitform/providers"
)

// grantStatus is what a grant means at the plan's instant.
type grantStatus int

const (
	stInert         grantStatus = iota // pending, denied or an expired request: plays no part
	stCounting                         // puts its principal into the policy's groups now
	stFuture                           // valid, starts later
	stEnded                            // its window is over
	stRevoked                          // revoked before its end
	stPolicyGone                       // its policy no longer exists
	stInvalid                          // no longer conforms to its current policy
	stOutsideWindow                    // inside [start,end) but the policy's windows are closed
)

// evalGrant is a grant evaluated once per plan; its status does not depend
// on the group, only the principal's resolution does.
type evalGrant struct {
	g       *Grant
	decl    *config.Grant // the grant block, for repository grants
	pol     *config.Policy
	status  grantStatus
	end     time.Time // effective end: the earlier of end and a future revocation
	until   time.Time // counting: when it stops counting (end or the policy window's close)
	stopAt  time.Time // not counting: when it stopped, to pick the latest removal reason
	detail  string    // why it does not count, for people
	warning *Warning  // why it does not count, for the plan's warnings

	// start and end are shared by every Reason naming this grant (read
	// only), rather than allocated per change.
	start, endp *time.Time
}

// window returns the grant's period for Reasons (set by evaluateGrants).
func (eg *evalGrant) window() (*time.Time, *time.Time) {
	return eg.start, eg.endp
}

// Compute derives the plan from the input. It is pure: the same input gives
// the same plan, byte for byte. It returns an error only for input that is
// not a plan input at all; problems with parts of the config become plan
// Errors and Warnings, and the affected groups get no changes.
func Compute(in Input) (*Plan, error) {
	if in.Config == nil {
		return nil, errors.New("compute plan: no configuration")
	}
	if in.Now.IsZero() {
		return nil, errors.New("compute plan: the plan time is not set")
	}
	c := newComputer(in)
	c.evaluateGrants()
	c.planGroups()
	c.planAccounts()
	c.orphanedInstances()
	c.nextChange()
	p := c.plan
	id, err := planID(p)
	if err != nil {
		return nil, fmt.Errorf("compute plan: %w", err)
	}
	p.ID = id
	return p, nil
}

type computer struct {
	in     Input
	now    time.Time
	cfg    *config.Config
	ledger *LedgerView
	plan   *Plan

	policies map[string]*config.Policy
	// byBase: managed set base address -> policies that name it.
	byBase map[string][]*config.Policy
	// byAccount: account base address -> policies that name it.
	byAccount map[string][]*config.Policy
	// ephemeral: policy address -> target address -> the ephemeral
	// account that stands in for the principal in the policy's sets on
	// that target (ephemeral.go).
	ephemeral map[string]map[string]*config.Account
	// byPolicy: policy address -> grants under it.
	byPolicy map[string][]*evalGrant
	byID     map[string]*evalGrant
	grants   []*evalGrant
	// windowsNow: each policy's windows at the plan's instant.
	windowsNow map[*config.Policy]policyNow
}

// groupScratch is one worker's scratch for planning groups, reused from
// group to group: at 10,000 groups, allocating the maps afresh is a
// measurable part of planning.
type groupScratch struct {
	observed          map[string]providers.Member
	desired           map[string]int // member ID -> index in wants
	wants             []want
	stopped           map[string][]*evalGrant
	removeIDs, addIDs []string
}

func newGroupScratch() *groupScratch {
	return &groupScratch{observed: map[string]providers.Member{}, desired: map[string]int{}, stopped: map[string][]*evalGrant{}}
}

// groupOut is what planning one group adds to the plan.
type groupOut struct {
	warnings, errors []Warning
	unreadable       *Unreadable
	digest           string // of the observed membership, when read
	read             bool
	changes          []Change
	summary          GroupSummary
	summarized       bool
}

func newComputer(in Input) *computer {
	now := in.Now.UTC()
	ledger := in.Ledger
	if ledger == nil {
		ledger = &LedgerView{}
	}
	c := &computer{
		in:     in,
		now:    now,
		cfg:    in.Config,
		ledger: ledger,
		plan: &Plan{
			FormatVersion: FormatVersion,
			CreatedAt:     now,
			At:            now,
			ConfigDigest:  in.Config.Digest,
			LedgerHead:    in.LedgerHead,
			Observed:      map[string]string{},
			Changes:       []Change{},
			Groups:        []GroupSummary{},
		},
		policies:  make(map[string]*config.Policy, len(in.Config.Policies)),
		byBase:    map[string][]*config.Policy{},
		byAccount: map[string][]*config.Policy{},
		byPolicy:  map[string][]*evalGrant{},
		byID:      map[string]*evalGrant{},
	}
	c.plan.Warnings = append(c.plan.Warnings, ledger.Warnings...)
	c.indexEphemeral()
	for _, pol := range in.Config.Policies {
		c.policies[pol.Addr] = pol
		seen := map[string]bool{}
		for _, base := range pol.Sets() {
			if !seen[base] {
				seen[base] = true
				c.byBase[base] = append(c.byBase[base], pol)
			}
		}
		for _, base := range pol.Accounts {
			if !seen[base] {
				seen[base] = true
				c.byAccount[base] = append(c.byAccount[base], pol)
			}
		}
	}
	return c
}

// repositoryGrant converts a grant block into the planner's Grant.
func repositoryGrant(g *config.Grant, revoked map[string]time.Time) Grant {
	out := Grant{
		ID:        g.Addr,
		Source:    "repository",
		Policy:    g.Policy,
		Principal: g.Principal,
		Start:     g.Start.UTC(),
		End:       g.End().UTC(),
		Ticket:    g.Ticket,
		Reason:    g.Reason,
		Approvers: distinct(g.ApprovedBy),
		// Subject is filled in only when a warning needs it (see subject).
	}
	if at, ok := revoked[g.Addr]; ok {
		out.Revoked, out.RevokedAt = true, at
	}
	return out
}

func (c *computer) evaluateGrants() {
	all := make([]evalGrant, 0, len(c.cfg.Grants)+len(c.ledger.Grants))
	for _, g := range c.cfg.Grants {
		rg := repositoryGrant(g, c.ledger.RevokedRepo)
		all = append(all, evalGrant{g: &rg, decl: g})
	}
	for i := range c.ledger.Grants {
		g := c.ledger.Grants[i]
		g.Start, g.End, g.RevokedAt = g.Start.UTC(), g.End.UTC(), g.RevokedAt.UTC()
		all = append(all, evalGrant{g: &g})
	}
	// A policy's windows at the plan's instant are the same for each of
	// its grants: worked out once per policy.
	c.windowsNow = make(map[*config.Policy]policyNow, len(c.policies))
	for _, pol := range c.policies {
		b, ok := nextBoundary(pol, c.now)
		c.windowsNow[pol] = policyNow{open: inWindows(pol, c.now), boundary: b, hasBoundary: ok}
	}
	// Each grant's evaluation reads only the input and writes only the
	// grant: on every core in chunks (there may be 100,000), its warning
	// kept with it and reported in grant order below.
	// The windows Reasons point at, in one allocation.
	windows := make([]time.Time, 2*len(all))
	parallel.Chunks(len(all), evalChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			eg := &all[i]
			c.evaluate(eg)
			windows[2*i], windows[2*i+1] = eg.g.Start, eg.end
			eg.start, eg.endp = &windows[2*i], &windows[2*i+1]
		}
	})
	c.grants = make([]*evalGrant, len(all))
	for i := range all {
		eg := &all[i]
		c.grants[i] = eg
		if eg.warning != nil {
			c.plan.Warnings = append(c.plan.Warnings, *eg.warning)
		}
		c.byID[eg.g.ID] = eg
		c.byPolicy[eg.g.Policy] = append(c.byPolicy[eg.g.Policy], eg)
	}
}

// evalChunk is how many grants one worker evaluates at a time.
var evalChunk = 2048

// policyNow is a policy's windows at the plan's instant.
type policyNow struct {
	open        bool      // inWindows
	boundary    time.Time // nextBoundary
	hasBoundary bool
}

func (c *computer) evaluate(eg *evalGrant) {
	g, now := eg.g, c.now
	eg.end = g.End
	if g.Pending || g.Denied || g.Expired {
		eg.status = stInert
		return
	}
	if g.Revoked && (g.RevokedAt.IsZero() || g.RevokedAt.Before(g.End)) {
		at := g.RevokedAt
		if at.IsZero() || !now.Before(at) {
			if at.IsZero() {
				at = now
			}
			eg.status, eg.stopAt = stRevoked, at
			eg.detail = "revoked at " + stamp(at)
			return
		}
		// Planned for an instant before the revocation: it ends then.
		eg.end = at
	}
	if !now.Before(eg.end) {
		eg.status, eg.stopAt = stEnded, eg.end
		eg.detail = "window ended " + stamp(eg.end)
		return
	}
	pol := c.policies[g.Policy]
	if pol == nil {
		eg.status, eg.stopAt = stPolicyGone, now
		eg.detail = g.Policy + " no longer exists"
		c.grantWarning(eg, fmt.Sprintf("%s does not count: %s no longer exists", g.ID, g.Policy), "")
		return
	}
	eg.pol = pol
	var inGroup func(string) bool
	if slices.ContainsFunc(pol.Eligible, func(e string) bool { return strings.HasPrefix(e, "group:") }) {
		principal := g.Principal
		inGroup = func(entry string) bool {
			for _, byEntry := range c.in.InGroup {
				if byEntry[entry][principal] {
					return true
				}
			}
			return false
		}
	}
	viol := pol.Check(config.GrantSpec{
		Principal:  g.Principal,
		Start:      g.Start,
		End:        g.End,
		Ticket:     g.Ticket,
		Approvers:  g.Approvers,
		BreakGlass: g.BreakGlass,
	}, inGroup)
	if len(viol) > 0 {
		parts := make([]string, len(viol))
		for i, v := range viol {
			parts[i] = v.Field + ": " + v.Message
		}
		eg.status, eg.stopAt = stInvalid, now
		eg.detail = "no longer conforms to " + pol.Addr + ": " + strings.Join(parts, "; ")
		c.grantWarning(eg, fmt.Sprintf("%s does not count: it does not conform to %s", g.ID, pol.Addr), strings.Join(parts, "; "))
		return
	}
	if now.Before(g.Start) {
		eg.status = stFuture
		return
	}
	wn := c.windowsNow[pol]
	if !wn.open {
		eg.status, eg.stopAt = stOutsideWindow, now
		eg.detail = "outside the windows of " + pol.Addr + " (" + windowSpecs(pol) + ")"
		return
	}
	eg.status = stCounting
	eg.until = eg.end
	if wn.hasBoundary && wn.boundary.Before(eg.until) {
		eg.until = wn.boundary
	}
}

// grantWarning keeps the grant's warning with it (evaluateGrants reports
// them in grant order).
func (c *computer) grantWarning(eg *evalGrant, summary, detail string) {
	eg.warning = &Warning{Summary: summary, Detail: detail, Subject: eg.subject()}
}

// subject is where the grant was written: file:line:col for a grant
// block, the ledger position for a ledger grant.
func (eg *evalGrant) subject() string {
	if eg.g.Subject == "" && eg.decl != nil {
		// Not kept: groups planned at once may ask for it together.
		return subject(eg.decl.DeclRange)
	}
	return eg.g.Subject
}

// want is one member of a group's desired set and what justifies it.
type want struct {
	member    providers.Member
	principal string
	declared  bool
	grant     *evalGrant // the counting grant that lasts longest
}

// groupChunk is how many groups one worker plans at a time.
var groupChunk = 256

func (c *computer) planGroups() {
	groups := slices.Clone(c.cfg.Groups)
	slices.SortFunc(groups, func(a, b *config.Group) int { return strings.Compare(a.Addr, b.Addr) })
	// A group is planned from the input and the evaluated grants, which
	// it only reads: on every core, each worker with its own scratch, and
	// the results joined in group order, so the plan is the same byte for
	// byte whatever the split.
	outs := make([]groupOut, len(groups))
	parallel.Chunks(len(groups), groupChunk, func(lo, hi int) {
		s := newGroupScratch()
		for i := lo; i < hi; i++ {
			c.planGroup(groups[i], s, &outs[i])
		}
	})
	n := 0
	for i := range outs {
		n += len(outs[i].changes)
	}
	c.plan.Changes = make([]Change, 0, n)
	for i := range outs {
		o := &outs[i]
		c.plan.Warnings = append(c.plan.Warnings, o.warnings...)
		c.plan.Errors = append(c.plan.Errors, o.errors...)
		if o.unreadable != nil {
			c.plan.Unreadable = append(c.plan.Unreadable, *o.unreadable)
		}
		if o.read {
			c.plan.Observed[groups[i].Addr] = o.digest
		}
		c.plan.Changes = append(c.plan.Changes, o.changes...)
		if o.summarized {
			c.plan.Groups = append(c.plan.Groups, o.summary)
		}
	}
}

// planGroup plans one group into out; s is the caller's scratch.
func (c *computer) planGroup(g *config.Group, s *groupScratch, out *groupOut) {
	targetAddr := ""
	if g.Target != nil {
		targetAddr = g.Target.Addr
	}
	kind := g.SetKind()
	object := ""
	switch kind {
	case KindRight:
		object = g.GroupName
	case KindSudoRole:
		object = g.DN
	}
	sum := GroupSummary{Kind: kind, Group: g.Addr, Target: targetAddr, Exclusive: g.Exclusive}
	if why, ok := c.in.Unsupported[g.Addr]; ok {
		out.warnings = append(out.warnings, Warning{
			Summary: fmt.Sprintf("%s is not managed: %s", g.Addr, why),
			Detail:  "nothing is planned for it; its holders are neither read nor changed",
			Subject: subject(g.DeclRange),
		})
		return
	}
	obs, ok := c.in.Observed[g.Addr]
	if !ok || obs.Err != nil {
		msg := "membership was not read"
		if ok {
			msg = obs.Err.Error()
		}
		u := Unreadable{Group: g.Addr, Target: targetAddr, Error: msg}
		if kind != KindGroup {
			u.Kind = kind
		}
		out.unreadable = &u
		out.summary, out.summarized = sum, true
		return
	}
	sum.Readable = true
	out.digest, out.read = ObservedDigest(obs), true
	// Scratch maps are reused across groups: at 10,000 groups, allocating
	// them afresh is a measurable part of planning.
	observed, desired, wants := s.observed, s.desired, s.wants[:0]
	clear(observed)
	clear(desired)
	defer func() { s.wants = wants[:0] }()
	for _, m := range obs.Members {
		observed[m.ID] = m
	}
	sum.Observed = len(observed)

	res := c.in.Resolved[targetAddr]
	resolve := func(principal string) (providers.Member, error) {
		r, ok := res[principal]
		switch {
		case !ok:
			return providers.Member{}, fmt.Errorf("%q was not resolved on %s", principal, targetAddr)
		case r.Err != nil:
			return providers.Member{}, r.Err
		case r.Member.ID == "":
			return providers.Member{}, fmt.Errorf("%q resolved to an empty identity on %s", principal, targetAddr)
		}
		return r.Member, nil
	}

	var relevant []*evalGrant
	if pols := c.byBase[g.BaseAddr]; len(pols) == 1 {
		relevant = c.byPolicy[pols[0].Addr] // the common case: no copy
	} else {
		for _, pol := range pols {
			relevant = append(relevant, c.byPolicy[pol.Addr]...)
		}
	}

	var errs []Warning
	for _, pr := range g.Members {
		m, err := resolve(pr)
		if err != nil {
			errs = append(errs, Warning{
				Summary: fmt.Sprintf("%s: unknown principal %q in members; no changes planned for this group", g.Addr, pr),
				Detail:  err.Error(),
				Subject: subject(g.MembersRange),
			})
			continue
		}
		if _, ok := desired[m.ID]; ok {
			continue
		}
		desired[m.ID] = len(wants)
		wants = append(wants, want{member: m, principal: pr, declared: true})
	}
	for _, eg := range relevant {
		if eg.status != stCounting {
			continue
		}
		m, err := c.grantMember(eg, targetAddr, resolve)
		if err != nil {
			errs = append(errs, Warning{
				Summary: fmt.Sprintf("%s: unknown principal %q in %s; no changes planned for this group", g.Addr, eg.g.Principal, eg.g.ID),
				Detail:  err.Error(),
				Subject: eg.subject(),
			})
			continue
		}
		i, ok := desired[m.ID]
		if !ok {
			i = len(wants)
			desired[m.ID] = i
			wants = append(wants, want{member: m, principal: eg.g.Principal})
		}
		if w := &wants[i]; w.grant == nil || lastsLonger(eg, w.grant) {
			w.grant = eg
		}
	}
	sum.Desired = len(desired)
	if len(errs) > 0 {
		// Never guess: a group with an unresolvable principal is left alone.
		out.errors = errs
		sum.Blocked = true
		out.summary, out.summarized = sum, true
		return
	}

	// Sort member IDs, not Changes: a Change is a large struct to swap.
	removeIDs, addIDs := s.removeIDs[:0], s.addIDs[:0]
	managed := c.ledger.Managed[g.Addr]
	for id := range observed {
		if _, ok := desired[id]; ok {
			continue
		}
		if _, isManaged := managed[id]; !g.Exclusive && !isManaged {
			// Not ours to remove; the plan says so, so nobody wonders.
			sum.Kept = append(sum.Kept, Kept{Member: id, MemberName: observed[id].Name})
			continue
		}
		removeIDs = append(removeIDs, id)
	}
	for id := range desired {
		if o, ok := observed[id]; !ok || ttlOff(o, &wants[desired[id]]) {
			addIDs = append(addIDs, id)
		}
	}
	slices.Sort(removeIDs)
	slices.Sort(addIDs)
	slices.SortFunc(sum.Kept, func(a, b Kept) int { return strings.Compare(a.Member, b.Member) })
	s.removeIDs, s.addIDs = removeIDs, addIDs
	cs := make([]Change, 0, len(removeIDs)+len(addIDs))
	// Removals first: if apply stops part-way, privilege was taken, not given.
	if len(removeIDs) > 0 {
		// stopped indexes the grants that stopped counting by member: one
		// resolution per grant, not per removal.
		stopped := s.stopped
		clear(stopped)
		for _, eg := range relevant {
			if stopKind(eg.status) == "" {
				continue
			}
			if m, err := c.grantMember(eg, targetAddr, resolve); err == nil {
				stopped[m.ID] = append(stopped[m.ID], eg)
			}
		}
		for _, id := range removeIDs {
			rec, isManaged := managed[id]
			ch := Change{Kind: kind, Action: "remove", Group: g.Addr, Target: targetAddr, Object: object, Member: id, MemberName: observed[id].Name}
			if e := observed[id].Expires; !e.IsZero() {
				ch.ServerExpires = &e
			}
			ch.Principal, ch.Reason = c.removeReason(g.BaseAddr, stopped[id], relevant, rec, isManaged)
			cs = append(cs, ch)
		}
	}
	for _, id := range addIDs {
		w := &wants[desired[id]]
		ch := Change{Kind: kind, Action: "add", Group: g.Addr, Target: targetAddr, Object: object, Member: id, MemberName: w.member.Name, Principal: w.principal}
		if w.declared {
			ch.Reason = Reason{Kind: ReasonDeclared, Detail: "declared member of " + g.Addr}
		} else {
			ch.Reason = c.grantReason(w.grant)
			if end := ch.Reason.WindowEnd; end != nil && g.Target != nil && g.Target.LDAP != nil && g.Target.LDAP.TTLLinks {
				e := end.Add(config.LDAPTTLGrace)
				ch.ServerExpires = &e
			}
		}
		if o, ok := observed[id]; ok {
			ch.Reason.Detail = strings.TrimPrefix(ch.Reason.Detail+"; ", "; ") + "rewrite the expiring link, which the server drops at " + stamp(o.Expires)
		}
		cs = append(cs, ch)
	}
	out.changes = cs
	adds, removes := addIDs, removeIDs
	sum.Adds, sum.Removes = len(adds), len(removes)
	out.summary, out.summarized = sum, true
}

// ttlOff: member o is present through an expiring link (Active Directory
// ttl_links) whose expiry no longer matches what keeps it (its grant's end
// plus config.LDAPTTLGrace, or never for a declared member). It is planned
// as an add, which rewrites the link; within a minute is a match.
func ttlOff(o providers.Member, w *want) bool {
	if o.Expires.IsZero() {
		return false
	}
	if w.declared || w.grant == nil {
		return true
	}
	_, end := w.grant.window()
	return expiryOff(o.Expires, end)
}

// expiryOff: a server-side expiry (an Active Directory TTL link, a Windows
// host's dead-man's switch) does not match the window end it should
// follow plus config.LDAPTTLGrace; within a minute is a match, which
// covers the switch's own grace (winrm.SwitchGrace stays within a minute
// of it).
func expiryOff(e time.Time, end *time.Time) bool {
	if end == nil {
		return true
	}
	d := e.Sub(end.Add(config.LDAPTTLGrace))
	return d > time.Minute || d < -time.Minute
}

// lastsLonger orders the counting grants of one member: the one that keeps
// it longest justifies the add (the member stays until the last one ends).
func lastsLonger(a, b *evalGrant) bool {
	if !a.until.Equal(b.until) {
		return a.until.After(b.until)
	}
	return a.g.ID < b.g.ID
}

func (c *computer) grantReason(eg *evalGrant) Reason {
	g := eg.g
	start, end := eg.window()
	r := Reason{
		Kind:        ReasonGrant,
		Grant:       g.ID,
		Policy:      g.Policy,
		Ticket:      g.Ticket,
		Approvers:   distinct(g.Approvers),
		WindowStart: start,
		WindowEnd:   end,
		BreakGlass:  g.BreakGlass,
		Unreviewed:  g.Unreviewed,

		ApproverFactors: approverFactors(g),
	}
	if eg.until.Before(*end) {
		r.Detail = fmt.Sprintf("%s's window closes at %s, before the grant ends", g.Policy, stamp(eg.until))
	}
	return r
}

// removeReason names why an observed member is no longer desired: the
// grant for it that stopped counting most recently, or the ledger's record
// of which grant jitform added it for, or (exclusive groups) that it was
// never declared nor granted.
// cands are the grants of this group that stopped counting and whose
// principal is the member.
func (c *computer) removeReason(base string, cands, relevant []*evalGrant, rec Managed, isManaged bool) (string, Reason) {
	var best *evalGrant
	bestKind := ""
	consider := func(eg *evalGrant, kind string) {
		if best == nil || eg.stopAt.After(best.stopAt) ||
			(eg.stopAt.Equal(best.stopAt) && (kindRank(kind) < kindRank(bestKind) ||
				kindRank(kind) == kindRank(bestKind) && eg.g.ID < best.g.ID)) {
			best, bestKind = eg, kind
		}
	}
	for _, eg := range cands {
		consider(eg, stopKind(eg.status))
	}
	var notCovering *evalGrant
	if isManaged && rec.Grant != "" {
		if eg := c.byID[rec.Grant]; eg != nil && !slices.Contains(relevant, eg) {
			// The grant jitform added it for no longer reaches this group:
			// its policy is gone or no longer names the group.
			if eg.status == stEnded || eg.status == stRevoked {
				consider(eg, stopKind(eg.status))
			} else {
				notCovering = eg
			}
		}
	}
	if best == nil && notCovering != nil {
		eg := notCovering
		detail := eg.detail
		if eg.status != stPolicyGone && eg.status != stInvalid {
			detail = fmt.Sprintf("%s no longer covers %s", eg.g.Policy, base)
		}
		r := c.stoppedReason(eg, ReasonPolicyChanged)
		r.Detail = detail
		return eg.g.Principal, r
	}
	if best == nil {
		r := Reason{Kind: ReasonUndeclared, Detail: "neither declared nor granted"}
		if isManaged {
			if rec.Grant != "" {
				r.Grant = rec.Grant
				r.Detail = fmt.Sprintf("added by jitform for %s, which no longer exists or no longer counts", rec.Grant)
			} else {
				r.Detail = "added by jitform; no longer declared nor granted"
			}
		}
		return "", r
	}
	return best.g.Principal, c.stoppedReason(best, bestKind)
}

func (c *computer) stoppedReason(eg *evalGrant, kind string) Reason {
	g := eg.g
	start, end := eg.window()
	return Reason{
		Kind:        kind,
		Grant:       g.ID,
		Policy:      g.Policy,
		Ticket:      g.Ticket,
		Approvers:   distinct(g.Approvers),
		WindowStart: start,
		WindowEnd:   end,
		BreakGlass:  g.BreakGlass,
		Unreviewed:  g.Unreviewed,
		Detail:      eg.detail,

		ApproverFactors: approverFactors(g),
	}
}

// stopKind is the removal reason a grant that stopped counting gives.
func stopKind(s grantStatus) string {
	switch s {
	case stEnded, stOutsideWindow:
		return ReasonWindowEnded
	case stRevoked:
		return ReasonRevoked
	case stInvalid, stPolicyGone:
		return ReasonPolicyChanged
	}
	return ""
}

// kindRank breaks ties between grants that stopped at the same instant: a
// deliberate act (revocation, policy change) explains more than a clock.
func kindRank(kind string) int {
	switch kind {
	case ReasonRevoked:
		return 0
	case ReasonPolicyChanged:
		return 1
	}
	return 2
}

// nextChange finds the earliest instant after now at which a desired set
// could change: a grant starting or ending, a policy window opening or
// closing while a grant is inside its [start,end).
func (c *computer) nextChange() {
	bases := make(map[string]bool, len(c.cfg.Groups)+len(c.cfg.Accounts))
	for _, g := range c.cfg.Groups {
		bases[g.BaseAddr] = true
	}
	for _, a := range c.cfg.Accounts {
		bases[a.BaseAddr] = true
	}
	covers := map[string]bool{}
	for _, pol := range c.cfg.Policies {
		for _, b := range slices.Concat(pol.Sets(), pol.Accounts) {
			if bases[b] {
				covers[pol.Addr] = true
				break
			}
		}
	}
	var next time.Time
	why := ""
	offer := func(t time.Time, reason string) {
		if t.After(c.now) && (next.IsZero() || t.Before(next)) {
			next, why = t, reason
		}
	}
	for _, eg := range c.grants {
		if !covers[eg.g.Policy] {
			continue
		}
		switch eg.status {
		case stCounting:
			if eg.until.Before(eg.end) {
				offer(eg.until, eg.g.Policy+" window closes for "+eg.g.ID)
			} else {
				offer(eg.end, eg.g.ID+" ends")
			}
		case stFuture:
			offer(eg.g.Start, eg.g.ID+" starts")
		case stOutsideWindow:
			if b, ok := nextBoundary(eg.pol, c.now); ok && b.Before(eg.end) {
				offer(b, eg.g.Policy+" window opens for "+eg.g.ID)
			}
		}
	}
	p := c.plan
	p.ValidUntil = c.now.Add(MaxPlanAge)
	if !next.IsZero() {
		t := next
		p.NextChangeAt = &t
		p.NextChange = why
		if t.Before(p.ValidUntil) {
			p.ValidUntil = t
		}
	}
}

func inWindows(pol *config.Policy, t time.Time) bool {
	if len(pol.Windows) == 0 {
		return true
	}
	for _, w := range pol.Windows {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// nextBoundary is the earliest open or close of any of the policy's windows
// strictly after t.
func nextBoundary(pol *config.Policy, t time.Time) (time.Time, bool) {
	var best time.Time
	for _, w := range pol.Windows {
		b := w.NextBoundary(t)
		if b.IsZero() {
			continue
		}
		if best.IsZero() || b.Before(best) {
			best = b
		}
	}
	return best.UTC(), !best.IsZero()
}

func windowSpecs(pol *config.Policy) string {
	specs := make([]string, len(pol.Windows))
	for i, w := range pol.Windows {
		specs[i] = w.Spec
	}
	return strings.Join(specs, ", ")
}

func distinct(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	dup := false
	for i, x := range xs {
		if slices.Contains(xs[:i], x) {
			dup = true
			break
		}
	}
	if !dup {
		return xs // shared, never modified
	}
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// subject formats a source position as file:line:col.
func subject(r hcl.Range) string {
	if r.Filename == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
