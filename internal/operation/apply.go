package operation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// ErrCancelled is returned when the person at the terminal did not approve.
var ErrCancelled = errors.New("apply cancelled: nothing was changed")

// StaleError is a saved plan that no longer matches the world.
type StaleError struct{ Err error }

func (e *StaleError) Error() string {
	// planner's error already says "the saved plan is stale: ..." and what to do.
	return e.Err.Error()
}
func (e *StaleError) Unwrap() error { return e.Err }

// PlanErrorsError is a plan with errors: apply refuses it whole, so that a
// config or ledger problem never leads to a partial apply.
type PlanErrorsError struct{ Errors []planner.Warning }

func (e *PlanErrorsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the plan has %d error(s), so nothing was applied:", len(e.Errors))
	for _, w := range e.Errors {
		b.WriteString("\n  - ")
		if w.Subject != "" {
			b.WriteString(w.Subject + ": ")
		}
		b.WriteString(w.Summary)
		if w.Detail != "" {
			b.WriteString(" (" + w.Detail + ")")
		}
	}
	b.WriteString("\nFix them and run `jitform plan` again.")
	return b.String()
}

// ConfirmFunc shows the plan about to be applied and says whether to go on.
type ConfirmFunc func(p *planner.Plan) (bool, error)

// Outcome is what happened to one planned change.
type Outcome struct {
	Change planner.Change
	Status providers.Status
	Err    error
}

// Result is an apply's outcome, one entry per change. Outcomes lists failed
// removals first (a member who should be gone is still there: the loudest
// failure), then other failures, then the rest in plan order.
type Result struct {
	Plan     *planner.Plan
	Outcomes []Outcome
	// Closed lists the uncertain changes of earlier runs this apply settled.
	Closed []Closure
	// ServerRemovals lists the members jitform added that this apply found
	// gone without a removal by jitform (recorded as removed_by_server).
	ServerRemovals []state.RemovedByServer
	// Config and its non-fatal diagnostics, for the caller to print.
	Config         *config.Config
	ConfigWarnings hcl.Diagnostics
}

// Counts summarises the result. Added and removed count changes that took
// effect (done, or already so).
func (r *Result) Counts() (added, removed, failed int) {
	for _, o := range r.Outcomes {
		switch {
		case !o.Status.OK():
			failed++
		case o.Change.Action == string(providers.Add):
			added++
		case o.Change.Action == string(providers.Remove):
			removed++
		}
	}
	return
}

// AccountCounts counts account changes that took effect.
func (r *Result) AccountCounts() (enabled, disabled int) {
	for _, o := range r.Outcomes {
		switch {
		case !o.Status.OK() || o.Change.Kind != planner.KindAccount:
		case o.Change.Action == planner.ActionEnable:
			enabled++
		case o.Change.Action == planner.ActionDisable:
			disabled++
		}
	}
	return
}

// EphemeralCounts counts ephemeral accounts created (or repaired) and
// deleted.
func (r *Result) EphemeralCounts() (created, deleted int) {
	for _, o := range r.Outcomes {
		switch {
		case !o.Status.OK() || o.Change.Kind != planner.KindAccount:
		case o.Change.Action == planner.ActionCreate:
			created++
		case o.Change.Action == planner.ActionDelete:
			deleted++
		}
	}
	return
}

// Failed reports whether any change failed.
func (r *Result) Failed() bool {
	_, _, f := r.Counts()
	return f > 0
}

// Apply takes the state lock, plans again under it and applies. With a saved
// plan it refuses a stale one (planner.CheckFresh) and applies exactly the
// saved changes without asking; otherwise the fresh plan is the one shown to
// confirm (nil confirm: apply without asking, as --auto-approve).
// A plan with errors is refused whole. Targets are changed in parallel; one
// failing target never stops the others.
func Apply(ctx context.Context, opts Options, saved *planner.Plan, confirm ConfirmFunc) (*Result, error) {
	opts.At = time.Time{} // apply is always for now
	cfg, warns, err := LoadConfigContext(ctx, opts.Dir, opts.now())
	if err != nil {
		return nil, err
	}
	if opts.ConfigLoaded != nil {
		opts.ConfigLoaded(cfg, warns)
	}
	if saved != nil {
		// A saved plan made with --target covers only its groups: compare
		// it with a fresh plan of the same scope.
		opts.Targets = savedScope(cfg, saved)
	}
	opts.progress("Acquiring the state lock...")
	unlock, err := lockState(ctx, opts, cfg, "apply") // targetlock.go
	if err != nil {
		return nil, fmt.Errorf("acquire the state lock: %w", err)
	}
	defer unlock()

	s, err := prepare(ctx, opts, cfg, warns)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	fresh, err := s.Plan()
	if err != nil {
		return nil, err
	}
	opts.progress("planned %d change(s)", len(fresh.Changes))
	p := fresh
	if saved != nil {
		if err := planner.CheckFresh(saved, fresh, opts.now()); err != nil {
			return nil, &StaleError{Err: err}
		}
		p = saved
	}
	if len(p.Errors) > 0 {
		return nil, &PlanErrorsError{Errors: p.Errors}
	}
	res := &Result{Plan: p, Config: cfg, ConfigWarnings: warns}
	if p.HasChanges() && saved == nil && confirm != nil {
		ok, err := confirm(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrCancelled
		}
	}
	// Who runs this apply (and who signed its plan) is recorded once, in
	// the same append as its first events: no extra write.
	runID := newID()
	gc := &groupCommit{b: s.opts.Backend, now: s.opts.now}
	first, err := s.startEvents(gc, p, runID)
	if err != nil {
		return res, err
	}
	gc.first = first
	// Settle what earlier runs left uncertain before making new changes.
	// The plan does not depend on it: closing only forgets members that
	// are absent, and the planner never removes an absent member.
	if err := s.closeUncertain(ctx, gc, runID, res); err != nil {
		return res, err
	}
	if !p.HasChanges() {
		return res, nil
	}
	err = s.execute(ctx, gc, runID, p, res)
	return res, err
}

// startEvents are the apply_started event (who runs the apply) and, with
// SignAs, the apply_signed event carrying the actor's signature over the
// plan's ID and digest. A signature that cannot be made refuses the apply
// before anything is written or changed.
func (s *Session) startEvents(gc *groupCommit, p *planner.Plan, runID string) ([]state.Event, error) {
	op := s.opts.Operation
	if op == "" {
		op = "apply"
	}
	runner := s.opts.Runner
	if runner == nil {
		r := CurrentRunner(nil)
		runner = &r
	}
	started, err := gc.event(state.EventApplyStarted, state.ApplyStarted{ID: runID, PlanID: p.ID, Operation: op, Runner: *runner})
	if err != nil {
		return nil, err
	}
	evs := []state.Event{started}
	if s.opts.SignAs == "" {
		return evs, nil
	}
	if s.opts.Signer == nil {
		return nil, fmt.Errorf("sign the plan as %s: no key; nothing was changed", s.opts.SignAs)
	}
	if s.Config.ActorByName(s.opts.SignAs) == nil {
		return nil, fmt.Errorf("sign the plan as %s: not a declared actor; nothing was changed", s.opts.SignAs)
	}
	digest, err := PlanDigest(p)
	if err != nil {
		return nil, err
	}
	signed, err := gc.event(state.EventApplySigned, state.ApplySigned{Run: runID, PlanID: p.ID, PlanDigest: digest})
	if err != nil {
		return nil, err
	}
	signed.Actor = s.opts.SignAs
	if err := state.SignEvent(&signed, s.opts.Signer); err != nil {
		return nil, fmt.Errorf("sign the plan %s: %w; nothing was changed", p.ID, err)
	}
	return append(evs, signed), nil
}

// PlanDigest is the SHA-256 of the plan's JSON, in hex: what apply --as
// signs with the plan's ID.
func PlanDigest(p *planner.Plan) (string, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("digest plan %s: %w", p.ID, err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// Closure is an uncertain change (an intent a crash left open, or an
// outcome "unknown") that this apply settled by reading its group.
type Closure struct {
	Change planner.Uncertain
	Status string // planner.StatusObservedPresent or planner.StatusObservedAbsent
}

// closeUncertain appends, in one write, an outcome for every change the
// ledger leaves uncertain whose group this session read: whether the member
// was found. Until then an uncertain add stays managed (jitform may remove
// it); after an observed_absent it is not jitform's, so a member an
// administrator adds by hand later is never removed as jitform's. Groups
// that could not be read, or are no longer configured on the same target,
// stay uncertain for a later run.
//
// In the same write it records, as removed_by_server, every member jitform
// added and never removed that the read found gone (serverRemovals).
func (s *Session) closeUncertain(ctx context.Context, gc *groupCommit, runID string, res *Result) error {
	if s.Input.Ledger == nil {
		return nil
	}
	var evs []state.Event
	var closed []Closure
	gone, err := s.serverRemovals(gc, runID)
	if err != nil {
		return err
	}
	for _, u := range s.Input.Ledger.Uncertain {
		c := u.Change
		var present, ok bool
		switch {
		case c.Kind == planner.KindAccount && (c.Action == planner.ActionCreate || c.Action == planner.ActionDelete):
			// An ephemeral account's change is settled by whether the
			// account exists: "present", as a create wants.
			present, ok = s.instancePresent(c)
		case c.Kind == planner.KindAccount:
			// An account change is settled by the account's state:
			// "present" is enabled, as an enable wants.
			present, ok = s.accountEnabled(c)
		default:
			present, ok = s.memberPresent(c)
		}
		if !ok {
			continue
		}
		st := planner.StatusObservedAbsent
		if present {
			st = planner.StatusObservedPresent
		}
		// applied: the membership is as the change wanted.
		typ := state.EventChangeFailed
		if present == (c.Action == string(providers.Add) || c.Action == planner.ActionEnable || c.Action == planner.ActionCreate) {
			typ = state.EventChangeApplied
		}
		why := "no outcome was recorded (the run stopped after its intent)"
		if u.Status == string(providers.Unknown) {
			why = "its outcome was unknown (the target's answer was lost)"
		}
		where := "absent from"
		if present {
			where = "present in"
		}
		oc := state.ChangeOutcome{ID: c.ID, Status: st, Run: runID}
		if typ == state.EventChangeFailed {
			oc.Error = fmt.Sprintf("%s; a later read found %s %s %s", why, c.Member, where, c.Group)
			if c.Kind == planner.KindAccount && (c.Action == planner.ActionCreate || c.Action == planner.ActionDelete) {
				found := map[bool]string{true: "existing", false: "gone"}[present]
				oc.Error = fmt.Sprintf("%s; a later read found %s (%s) %s", why, c.Member, c.Group, found)
			} else if c.Kind == planner.KindAccount {
				found := map[bool]string{true: "enabled", false: "disabled"}[present]
				oc.Error = fmt.Sprintf("%s; a later read found %s (%s) %s", why, c.Group, c.Member, found)
			}
		}
		ev, err := gc.event(typ, oc)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
		closed = append(closed, Closure{Change: u, Status: st})
	}
	if len(evs) == 0 && len(gone) == 0 {
		return nil
	}
	if len(evs) > 0 {
		s.opts.progress("closing %d uncertain change(s) left by earlier runs", len(evs))
	}
	for _, g := range gone {
		evs = append(evs, g.ev)
		s.opts.progress("%s: %s is gone although jitform never removed it (lock: %s)", g.p.Group, g.p.Member, g.p.Lock)
	}
	if err := gc.append(ctx, evs); err != nil {
		return fmt.Errorf("record what was found for %d uncertain or vanished member(s) in the ledger: %w", len(evs), err)
	}
	res.Closed = closed
	for _, g := range gone {
		res.ServerRemovals = append(res.ServerRemovals, g.p)
	}
	return nil
}

// memberPresent reads whether an uncertain membership change's member is
// in its group now; ok is false when the group cannot tell (unreadable, or
// no longer configured on the same target).
func (s *Session) memberPresent(c state.Change) (present, ok bool) {
	g := s.Config.GroupByAddr(c.Group)
	if g == nil || g.Target == nil || g.Target.Addr != c.Target {
		return false, false
	}
	o, read := s.Input.Observed[c.Group]
	if !read || o.Err != nil {
		return false, false
	}
	for _, m := range o.Members {
		if m.ID == c.Member {
			return true, true
		}
	}
	return false, true
}

// accountEnabled reads whether an uncertain account change's account is
// enabled now; ok is false when it cannot be read.
func (s *Session) accountEnabled(c state.Change) (enabled, ok bool) {
	a := s.Config.AccountByAddr(c.Group)
	if a == nil || a.Target == nil || a.Target.Addr != c.Target {
		return false, false
	}
	st, read := s.Input.Accounts[c.Group]
	if !read || st.Err != nil || !st.Exists {
		return false, false
	}
	return st.Enabled, true
}

// instancePresent reads whether an uncertain create or delete's ephemeral
// account exists now; ok is false when its base cannot be read.
func (s *Session) instancePresent(c state.Change) (present, ok bool) {
	a := s.Config.AccountByAddr(c.Group)
	if a == nil || !a.Ephemeral || a.Target == nil || a.Target.Addr != c.Target {
		return false, false
	}
	st, read := s.Input.Accounts[c.Group]
	if !read || st.Err != nil || !st.Exists {
		return false, false
	}
	for _, in := range st.Instances {
		if in.Member.ID == c.Member {
			return true, true
		}
	}
	return false, true
}

type serverRemoval struct {
	p  state.RemovedByServer
	ev state.Event
}

// serverRemovals finds the members jitform added for a grant, and never
// removed, that this session's read found gone from their group: a
// server-side lock removed them (an expiring link, a host's dead-man's
// switch) when their add was written with one, else someone or something
// else did (lock "unknown"). Changes still uncertain are left to
// closeUncertain; groups that could not be read, or moved to another
// target, are left for a later run.
func (s *Session) serverRemovals(gc *groupCommit, runID string) ([]serverRemoval, error) {
	lv := s.Input.Ledger
	if len(lv.Managed) == 0 {
		return nil, nil
	}
	uncertain := map[[2]string]bool{}
	for _, u := range lv.Uncertain {
		uncertain[[2]string{u.Change.Group, u.Change.Member}] = true
	}
	type cand struct{ group, member, grant string }
	var cands []cand
	groups := make([]string, 0, len(lv.Managed))
	for g := range lv.Managed {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, addr := range groups {
		g := s.Config.GroupByAddr(addr)
		o, ok := s.Input.Observed[addr]
		if g == nil || g.Target == nil || !ok || o.Err != nil {
			continue
		}
		present := make(map[string]bool, len(o.Members))
		for _, m := range o.Members {
			present[m.ID] = true
		}
		members := make([]string, 0, len(lv.Managed[addr]))
		for m := range lv.Managed[addr] {
			members = append(members, m)
		}
		sort.Strings(members)
		for _, m := range members {
			mg := lv.Managed[addr][m]
			if mg.Grant == "" || present[m] || uncertain[[2]string{addr, m}] {
				continue
			}
			cands = append(cands, cand{addr, m, mg.Grant})
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	// The add intents that made them managed: the last add of each.
	last := map[[2]string]state.Change{}
	for _, ev := range s.Events {
		if ev.Type != state.EventChangeIntent {
			continue
		}
		var c state.Change
		if json.Unmarshal(ev.Payload, &c) == nil && c.Action == string(providers.Add) {
			last[[2]string{c.Group, c.Member}] = c
		}
	}
	now := s.opts.now()
	var out []serverRemoval
	for _, c := range cands {
		intent, ok := last[[2]string{c.group, c.member}]
		if !ok {
			continue
		}
		lock := state.LockUnknown
		if intent.Expires != nil {
			lock = serverLock(s.Config.GroupByAddr(c.group).Target)
		}
		p := state.RemovedByServer{Run: runID, Intent: intent.ID, Group: c.group, Member: c.member, Grant: c.grant,
			Lock: lock, Expires: intent.Expires, ObservedAt: now}
		ev, err := gc.event(state.EventRemovedByServer, p)
		if err != nil {
			return nil, err
		}
		out = append(out, serverRemoval{p: p, ev: ev})
	}
	return out, nil
}

// savedScope is the --target selection a saved plan was made with: its
// groups, or nil when it covers every group of cfg.
func savedScope(cfg *config.Config, saved *planner.Plan) []string {
	in := map[string]bool{}
	for _, g := range saved.Groups {
		in[g.Group] = true
	}
	for _, a := range saved.Accounts {
		in[a.Account] = true
	}
	all := true
	for _, g := range cfg.Groups {
		if !in[g.Addr] {
			all = false
			break
		}
	}
	for _, a := range cfg.Accounts {
		if !in[a.Addr] {
			all = false
			break
		}
	}
	if all {
		return nil
	}
	var scope []string
	for _, g := range cfg.Groups {
		if in[g.Addr] {
			scope = append(scope, g.Addr)
		}
	}
	for _, a := range cfg.Accounts {
		if in[a.Addr] {
			scope = append(scope, a.Addr)
		}
	}
	return scope
}

// PlanAndApply plans for now and applies at once, without asking: one
// reconciliation, for `jitform run`. The returned plan carries NextChangeAt.
// A plan with errors is returned with a *PlanErrorsError and nothing applied.
func PlanAndApply(ctx context.Context, opts Options) (*planner.Plan, *Result, error) {
	res, err := Apply(ctx, opts, nil, nil)
	if res == nil {
		return nil, nil, err
	}
	return res.Plan, res, err
}

// groupCommit coalesces concurrent appends into one Backend.Append: the
// first caller becomes the writer and, while its write is in flight, others
// queue; the writer then appends everything queued in one call. Targets are
// changed in parallel, the ledger is one chain, and every Append costs the
// backend its fsyncs: an apply writes its intents in one or two appends and
// its outcomes in one or two, however many changes it makes. Each caller
// returns only once its own events are durable (or the append failed, in
// which case none of the events of that write were stored).
type groupCommit struct {
	b   state.Backend
	now func() time.Time
	// first are events that go at the head of the first successful write
	// (apply_started, apply_signed). Only the writer touches it.
	first []state.Event

	mu      sync.Mutex
	writing bool
	queue   []*commitReq
}

type commitReq struct {
	events []state.Event
	done   chan error
}

// event builds one system event with a JSON payload.
func (g *groupCommit) event(typ string, payload any) (state.Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return state.Event{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	return state.Event{Time: g.now(), Type: typ, Actor: state.SystemActor, Payload: raw}, nil
}

// append makes events durable, all of them in one backend Append (shared
// with whatever other callers are waiting at the time).
func (g *groupCommit) append(ctx context.Context, events []state.Event) error {
	if len(events) == 0 {
		return nil
	}
	r := &commitReq{events: events, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.writing {
		// The writer in flight takes this request in its next write.
		g.mu.Unlock()
		return <-r.done
	}
	g.writing = true
	for len(g.queue) > 0 {
		batch := g.queue
		g.queue = nil
		g.mu.Unlock()
		all := append([]state.Event(nil), g.first...)
		for _, q := range batch {
			all = append(all, q.events...)
		}
		_, err := g.b.Append(ctx, all...)
		if err == nil {
			g.first = nil
		}
		for _, q := range batch {
			q.done <- err
		}
		g.mu.Lock()
	}
	g.writing = false
	g.mu.Unlock()
	return <-r.done
}

// execute carries out p's changes: per target in parallel, one provider
// call per target with all of its changed groups. Before the call, the
// intents of every change of that call are made durable in one append;
// after it, their outcomes in one append (coalesced across targets by
// groupCommit).
func (s *Session) execute(ctx context.Context, gc *groupCommit, runID string, p *planner.Plan, res *Result) error {
	type targetBatch struct {
		addr   string
		groups []*groupBatch
		// creates: ephemeral accounts to create, made before the target's
		// membership changes (which may add them to groups); accounts: the
		// other account changes, made after them (an ephemeral account is
		// deleted once it has left its groups).
		creates, accounts []int
	}
	var order []*targetBatch
	byTarget := map[string]*targetBatch{}
	byGroup := map[string]*groupBatch{}
	outcomes := make([]Outcome, len(p.Changes))
	for i, c := range p.Changes {
		outcomes[i] = Outcome{Change: c, Status: providers.Failed}
		if c.Kind == planner.KindAccount {
			tb := byTarget[c.Target]
			if tb == nil {
				tb = &targetBatch{addr: c.Target}
				byTarget[c.Target] = tb
				order = append(order, tb)
			}
			if c.Action == planner.ActionCreate {
				tb.creates = append(tb.creates, i)
			} else {
				tb.accounts = append(tb.accounts, i)
			}
			continue
		}
		b := byGroup[c.Group]
		if b == nil {
			b = &groupBatch{group: s.Config.GroupByAddr(c.Group)}
			byGroup[c.Group] = b
			tb := byTarget[c.Target]
			if tb == nil {
				tb = &targetBatch{addr: c.Target}
				byTarget[c.Target] = tb
				order = append(order, tb)
			}
			tb.groups = append(tb.groups, b)
		}
		b.changes = append(b.changes, i)
	}

	var errMu sync.Mutex
	var ledgerErrs []error

	sem := make(chan struct{}, s.opts.parallelism())
	var wg sync.WaitGroup
	prog := newTargetProgress(len(order), s.opts.now)
	for _, tb := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(tb *targetBatch) {
			defer wg.Done()
			defer func() { <-sem }()
			began := s.opts.now()
			if len(tb.creates) > 0 {
				if err := s.applyAccounts(ctx, gc, p, runID, tb.addr, tb.creates, outcomes); err != nil {
					errMu.Lock()
					ledgerErrs = append(ledgerErrs, err)
					errMu.Unlock()
				}
			}
			err := s.applyTarget(ctx, gc, p, runID, tb.addr, tb.groups, outcomes)
			if err != nil {
				errMu.Lock()
				ledgerErrs = append(ledgerErrs, err)
				errMu.Unlock()
			}
			if len(tb.accounts) > 0 {
				if err := s.applyAccounts(ctx, gc, p, runID, tb.addr, tb.accounts, outcomes); err != nil {
					errMu.Lock()
					ledgerErrs = append(ledgerErrs, err)
					errMu.Unlock()
				}
			}
			s.opts.progress("%s", prog.done(tb.addr, began))
		}(tb)
	}
	wg.Wait()

	res.Outcomes = sortOutcomes(outcomes)
	if len(ledgerErrs) > 0 {
		return fmt.Errorf("record changes in the ledger: %w", errors.Join(ledgerErrs...))
	}
	return nil
}

// groupBatch is one group's changes, as indexes into the plan's changes.
type groupBatch struct {
	group   *config.Group
	changes []int
}

// applyTarget changes every group of one target in one provider call.
// Outcomes are written into out by index. It returns an error only when the
// ledger could not be written.
func (s *Session) applyTarget(ctx context.Context, gc *groupCommit, p *planner.Plan, runID string,
	taddr string, groups []*groupBatch, out []Outcome) error {

	fail := func(i int, err error) { out[i].Status, out[i].Err = providers.Failed, err }
	t := s.targets[taddr]
	if t == nil {
		err := s.openErr[taddr]
		if err == nil {
			err = fmt.Errorf("target %s is not open", taddr)
		}
		for _, b := range groups {
			for _, i := range b.changes {
				fail(i, err)
			}
		}
		return nil
	}

	// Announce every change before making any, all in one durable write: a
	// crash after the provider call still leaves a record that the member
	// may have been added, and no change is made without its intent.
	var (
		announced []int // plan change indexes, in call order
		intents   []state.Event
		calls     []providers.GroupChange
	)
	ids := map[int]string{}
	for _, b := range groups {
		if b.group == nil {
			for _, i := range b.changes {
				fail(i, fmt.Errorf("group %s is no longer in the configuration", p.Changes[i].Group))
			}
			continue
		}
		call := providers.GroupChange{Group: b.group}
		for _, i := range b.changes {
			c := p.Changes[i]
			id := fmt.Sprintf("%s-%d", runID, i)
			crashpoint.Hit(crashpoint.BeforeIntent)
			ev, err := gc.event(state.EventChangeIntent, state.Change{
				ID: id, PlanID: p.ID, Action: c.Action, Group: c.Group, Target: c.Target,
				Member: c.Member, Name: c.MemberName, Reason: c.Reason.Kind,
				Grant: c.Reason.Grant, Policy: c.Reason.Policy, Ticket: c.Reason.Ticket,
				Run: runID, Expires: lockExpiry(b.group, c),
			})
			if err != nil {
				fail(i, fmt.Errorf("not attempted: %w", err))
				continue
			}
			ids[i] = id
			intents = append(intents, ev)
			announced = append(announced, i)
			m := providers.Member{ID: c.Member, Name: c.MemberName}
			if c.Action == "add" && c.Reason.Kind == planner.ReasonGrant && c.Reason.WindowEnd != nil {
				m.Expires = *c.Reason.WindowEnd // a target with expiring links (ttl_links) writes it
				m.Grant = c.Reason.Grant        // a Windows host's dead-man's switch records it
			}
			call.Changes = append(call.Changes, providers.MemberChange{Action: providers.Action(c.Action), Member: m})
		}
		if len(call.Changes) > 0 {
			calls = append(calls, call)
		}
	}
	if len(announced) == 0 {
		return nil
	}
	if err := gc.append(ctx, intents); err != nil {
		// Without its intent on record a change must not be made.
		for _, i := range announced {
			fail(i, fmt.Errorf("not attempted: recording the intent failed: %w", err))
		}
		return fmt.Errorf("change intents for %d change(s) on %s: %w", len(announced), taddr, err)
	}
	s.opts.progress("%s: %d intent(s) recorded in the ledger", taddr, len(announced))
	for range announced {
		crashpoint.Hit(crashpoint.AfterIntent)
	}

	s.opts.progress("%s: applying %d change(s) in %d group(s)", taddr, len(announced), len(calls))
	outs, callErr := t.Apply(ctx, calls)
	for range announced {
		crashpoint.Hit(crashpoint.AfterCall)
	}

	type key struct{ group, action, member string }
	got := make(map[key]providers.Outcome, len(outs))
	for _, o := range outs {
		got[key{o.Group, string(o.Change.Action), o.Change.Member.ID}] = o
	}
	results := make([]state.Event, 0, len(announced))
	var errs []error
	for _, i := range announced {
		c := p.Changes[i]
		o, ok := got[key{c.Group, c.Action, c.Member}]
		switch {
		case callErr != nil && !ok:
			out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s %s on %s: %w", c.Action, c.Member, c.Group, callErr)
		case !ok:
			out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s reported no outcome for %s %s in %s", taddr, c.Action, c.Member, c.Group)
		default:
			out[i].Status, out[i].Err = o.Status, o.Err
			if !o.Status.OK() && o.Err == nil {
				out[i].Err = errors.New("the provider reported a failure without a reason")
			}
		}
		typ := state.EventChangeApplied
		oc := state.ChangeOutcome{ID: ids[i], Status: string(out[i].Status), Run: runID}
		if !out[i].Status.OK() {
			typ = state.EventChangeFailed
			oc.Error = out[i].Err.Error()
		}
		ev, err := gc.event(typ, oc)
		if err != nil {
			errs = append(errs, fmt.Errorf("outcome of %s %s in %s: %w", c.Action, c.Member, c.Group, err))
			continue
		}
		results = append(results, ev)
		if se, ok := sessionsEndedEvent(gc, ids[i], c, o.Sessions); ok {
			results = append(results, se) // in the same write as its outcome
		}
	}
	s.opts.progress("%s: provider call returned %d outcome(s)", taddr, len(outs))
	if err := gc.append(ctx, results); err != nil {
		errs = append(errs, fmt.Errorf("outcomes of %d change(s) on %s: %w", len(results), taddr, err))
	} else {
		s.opts.progress("%s: %d outcome(s) recorded in the ledger", taddr, len(results))
	}
	return errors.Join(errs...)
}

// lockExpiry is when a server-side lock removes the member c adds (its
// window end, on a target with expiring links or a host's switch); nil
// when no lock covers it.
func lockExpiry(g *config.Group, c planner.Change) *time.Time {
	if c.Action != string(providers.Add) || c.Reason.Kind != planner.ReasonGrant || c.Reason.WindowEnd == nil {
		return nil
	}
	if serverLock(g.Target) == state.LockUnknown {
		return nil
	}
	t := c.Reason.WindowEnd.UTC()
	return &t
}

// sessionsEndedEvent is the sessions_ended event that follows the outcome
// of a removal whose provider logged off the member's sessions
// (end_sessions); ok is false when there is none to record.
func sessionsEndedEvent(gc *groupCommit, id string, c planner.Change, se *providers.SessionsEnded) (state.Event, bool) {
	if se == nil {
		return state.Event{}, false
	}
	p := state.SessionsEnded{ID: id, Group: c.Group, Member: c.Member, Host: se.Host, Sessions: se.Count}
	if se.Err != nil {
		p.Error = se.Err.Error()
	}
	ev, err := gc.event(state.EventSessionsEnded, p)
	return ev, err == nil
}

func sortOutcomes(outs []Outcome) []Outcome {
	rank := func(o Outcome) int {
		switch {
		case !o.Status.OK() && o.Change.Action == string(providers.Remove):
			return 0
		case !o.Status.OK():
			return 1
		default:
			return 2
		}
	}
	sorted := append([]Outcome(nil), outs...)
	sort.SliceStable(sorted, func(i, j int) bool { return rank(sorted[i]) < rank(sorted[j]) })
	return sorted
}

func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}
