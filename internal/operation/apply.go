package operation

import (
	"context"
	"crypto/rand"
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
	cfg, warns, err := LoadConfig(opts.Dir, opts.now())
	if err != nil {
		return nil, err
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
	if !p.HasChanges() {
		return res, nil
	}
	if saved == nil && confirm != nil {
		ok, err := confirm(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrCancelled
		}
	}
	err = s.execute(ctx, p, res)
	return res, err
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

// ledgerWriter serialises appends: targets are changed in parallel, the
// ledger is one chain.
type ledgerWriter struct {
	mu  sync.Mutex
	b   state.Backend
	now func() time.Time
}

func (l *ledgerWriter) append(ctx context.Context, typ string, payload any) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.b.Append(ctx, state.Event{Time: l.now(), Type: typ, Actor: state.SystemActor, Payload: raw})
	return err
}

// execute carries out p's changes: per target in parallel, per group one
// provider call, each member change announced by an intent event before the
// call and closed by an outcome event after it.
func (s *Session) execute(ctx context.Context, p *planner.Plan, res *Result) error {
	type batch struct {
		group   *config.Group
		changes []int // indexes into p.Changes
	}
	type targetBatches struct {
		addr    string
		batches []*batch
		// accounts: indexes of account changes, made after the target's
		// membership changes in one SetAccounts call.
		accounts []int
	}
	var order []*targetBatches
	byTarget := map[string]*targetBatches{}
	byGroup := map[string]*batch{}
	outcomes := make([]Outcome, len(p.Changes))
	for i, c := range p.Changes {
		outcomes[i] = Outcome{Change: c, Status: providers.Failed}
		if c.Kind == planner.KindAccount {
			tb := byTarget[c.Target]
			if tb == nil {
				tb = &targetBatches{addr: c.Target}
				byTarget[c.Target] = tb
				order = append(order, tb)
			}
			tb.accounts = append(tb.accounts, i)
			continue
		}
		b := byGroup[c.Group]
		if b == nil {
			g := s.Config.GroupByAddr(c.Group)
			b = &batch{group: g}
			byGroup[c.Group] = b
			tb := byTarget[c.Target]
			if tb == nil {
				tb = &targetBatches{addr: c.Target}
				byTarget[c.Target] = tb
				order = append(order, tb)
			}
			tb.batches = append(tb.batches, b)
		}
		b.changes = append(b.changes, i)
	}

	runID := newID()
	lw := &ledgerWriter{b: s.opts.Backend, now: s.opts.now}
	var errMu sync.Mutex
	var ledgerErrs []error

	sem := make(chan struct{}, s.opts.parallelism())
	var wg sync.WaitGroup
	for _, tb := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(tb *targetBatches) {
			defer wg.Done()
			defer func() { <-sem }()
			t := s.targets[tb.addr]
			for _, b := range tb.batches {
				err := s.applyBatch(ctx, lw, p, runID, t, tb.addr, b.group, b.changes, outcomes)
				if err != nil {
					errMu.Lock()
					ledgerErrs = append(ledgerErrs, err)
					errMu.Unlock()
				}
			}
			if len(tb.accounts) > 0 {
				if err := s.applyAccounts(ctx, lw, p, runID, t, tb.addr, tb.accounts, outcomes); err != nil {
					errMu.Lock()
					ledgerErrs = append(ledgerErrs, err)
					errMu.Unlock()
				}
			}
		}(tb)
	}
	wg.Wait()

	res.Outcomes = sortOutcomes(outcomes)
	if len(ledgerErrs) > 0 {
		return fmt.Errorf("record changes in the ledger: %w", errors.Join(ledgerErrs...))
	}
	return nil
}

// applyBatch changes one group. Outcomes are written into out by index. It
// returns an error only when the ledger could not be written.
func (s *Session) applyBatch(ctx context.Context, lw *ledgerWriter, p *planner.Plan, runID string,
	t providers.Target, taddr string, g *config.Group, idx []int, out []Outcome) error {

	fail := func(i int, err error) { out[i].Status, out[i].Err = providers.Failed, err }
	if g == nil {
		for _, i := range idx {
			fail(i, fmt.Errorf("group %s is no longer in the configuration", p.Changes[i].Group))
		}
		return nil
	}
	if t == nil {
		err := s.openErr[taddr]
		if err == nil {
			err = fmt.Errorf("target %s is not open", taddr)
		}
		for _, i := range idx {
			fail(i, err)
		}
		return nil
	}

	// Announce every change before making any: a crash after the provider
	// call still leaves a record that the member may have been added.
	ids := map[int]string{}
	var announced []int
	for _, i := range idx {
		c := p.Changes[i]
		id := fmt.Sprintf("%s-%d", runID, i)
		crashpoint.Hit(crashpoint.BeforeIntent)
		err := lw.append(ctx, state.EventChangeIntent, state.Change{
			ID: id, PlanID: p.ID, Action: c.Action, Group: c.Group, Target: c.Target,
			Member: c.Member, Name: c.MemberName, Reason: c.Reason.Kind,
			Grant: c.Reason.Grant, Policy: c.Reason.Policy, Ticket: c.Reason.Ticket,
		})
		if err != nil {
			// Without its intent on record a change must not be made.
			for _, j := range idx {
				if _, ok := ids[j]; !ok {
					fail(j, fmt.Errorf("not attempted: recording the intent failed: %w", err))
				}
			}
			if len(announced) == 0 {
				return fmt.Errorf("change intent for %s in %s: %w", c.Member, c.Group, err)
			}
			break
		}
		crashpoint.Hit(crashpoint.AfterIntent)
		ids[i] = id
		announced = append(announced, i)
	}

	gc := providers.GroupChange{Group: g}
	for _, i := range announced {
		c := p.Changes[i]
		m := providers.Member{ID: c.Member, Name: c.MemberName}
		if c.Action == "add" && c.Reason.Kind == planner.ReasonGrant && c.Reason.WindowEnd != nil {
			m.Expires = *c.Reason.WindowEnd // a target with expiring links (ttl_links) writes it
			m.Grant = c.Reason.Grant        // a Windows host's dead-man's switch records it
		}
		gc.Changes = append(gc.Changes, providers.MemberChange{Action: providers.Action(c.Action), Member: m})
	}
	s.opts.progress("%s: %s: applying %d change(s)", taddr, g.Addr, len(gc.Changes))
	outs, callErr := t.Apply(ctx, []providers.GroupChange{gc})
	for range announced {
		crashpoint.Hit(crashpoint.AfterCall)
	}

	type key struct{ action, member string }
	got := map[key]providers.Outcome{}
	for _, o := range outs {
		got[key{string(o.Change.Action), o.Change.Member.ID}] = o
	}
	var errs []error
	for _, i := range announced {
		c := p.Changes[i]
		o, ok := got[key{c.Action, c.Member}]
		switch {
		case callErr != nil && !ok:
			out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s %s on %s: %w", c.Action, c.Member, c.Group, callErr)
		case !ok:
			out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s reported no outcome for %s %s", taddr, c.Action, c.Member)
		default:
			out[i].Status, out[i].Err = o.Status, o.Err
			if !o.Status.OK() && o.Err == nil {
				out[i].Err = errors.New("the provider reported a failure without a reason")
			}
		}
		typ := state.EventChangeApplied
		oc := state.ChangeOutcome{ID: ids[i], Status: string(out[i].Status)}
		if !out[i].Status.OK() {
			typ = state.EventChangeFailed
			oc.Error = out[i].Err.Error()
		}
		if err := lw.append(ctx, typ, oc); err != nil {
			errs = append(errs, fmt.Errorf("outcome of %s %s in %s: %w", c.Action, c.Member, c.Group, err))
		}
		if err := recordSessionsEnded(ctx, lw, ids[i], c, o.Sessions); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recordSessionsEnded appends a sessions_ended event after the outcome of a
// removal whose provider logged off the member's sessions (end_sessions).
func recordSessionsEnded(ctx context.Context, lw *ledgerWriter, id string, c planner.Change, se *providers.SessionsEnded) error {
	if se == nil {
		return nil
	}
	ev := state.SessionsEnded{ID: id, Group: c.Group, Member: c.Member, Host: se.Host, Sessions: se.Count}
	if se.Err != nil {
		ev.Error = se.Err.Error()
	}
	if err := lw.append(ctx, state.EventSessionsEnded, ev); err != nil {
		return fmt.Errorf("sessions ended for %s on %s: %w", c.Member, se.Host, err)
	}
	return nil
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
