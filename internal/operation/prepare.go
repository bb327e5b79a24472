// Package operation is the I/O orchestration behind the CLI: it gathers a
// planner.Input (load the config, verify and replay the ledger, open the
// targets, resolve principals and read groups in parallel) and carries a plan
// out (lock, intent event, provider call, outcome event, per change).
// cmd/jitform parses flags and renders; everything it does goes through here.
package operation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// DefaultParallelism is how many targets are read or changed at once when
// Options.Parallelism is not set.
const DefaultParallelism = 10

// Options configure one plan or apply.
type Options struct {
	Dir string // the policy repository
	// At is the instant to plan for; zero means now. Apply always uses now.
	At time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Targets limits the plan to these target or group addresses
	// (target.ldif.directory, group.db_admins, group.web["web01"]); empty: all.
	Targets     []string
	Parallelism int
	Registry    providers.Registry
	Backend     state.Backend
	// Progress receives one human line per step (the CLI sends it to stderr).
	Progress    func(format string, args ...any)
	LockTimeout time.Duration
	// Who is recorded in the lock (user@host); empty: the current user.
	Who string
	// Log receives the providers' protocol debug records (JITFORM_LOG).
	Log *slog.Logger
	// ConfigLoaded, if set, gets the configuration's warnings as soon as
	// apply has loaded it, so a person reads them before the prompt.
	ConfigLoaded func(cfg *config.Config, warnings hcl.Diagnostics)
	// Operation is what apply_started records: "apply" (default) or "run".
	Operation string
	// Runner is who runs the apply, for the ledger; nil: CurrentRunner().
	Runner *state.Runner
	// SignAs and Signer: a declared actor who signs the plan being applied
	// (apply --as); the apply_signed event precedes its intents.
	SignAs string
	Signer ssh.Signer
	// VerifyMemo, when set, remembers the grant signatures that verified
	// (grants.Memo): `jitform run` keeps one in memory across its cycles,
	// plan and apply a file one under JITFORM_VERIFY_CACHE. nil: every
	// signature is verified.
	VerifyMemo grants.Memo
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o *Options) at() time.Time {
	if !o.At.IsZero() {
		return o.At.UTC()
	}
	return o.now()
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

func (o *Options) parallelism() int {
	if o.Parallelism > 0 {
		return o.Parallelism
	}
	return DefaultParallelism
}

func (o *Options) lockInfo(operation string) state.LockInfo {
	who := o.Who
	if who == "" {
		who = CurrentUser()
	}
	return state.LockInfo{Operation: operation, Who: who, PID: os.Getpid(), Since: o.now()}
}

// CurrentUser is user@host, for locks and for the actor of CLI events.
func CurrentUser() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}

// ConfigError is a configuration that does not load. Nothing was read or
// changed. Config carries the sources, to render Diags with snippets.
type ConfigError struct {
	Config *config.Config
	Diags  hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	n := 0
	var first *hcl.Diagnostic
	for _, d := range e.Diags {
		if d.Severity == hcl.DiagError {
			n++
			if first == nil {
				first = d
			}
		}
	}
	if first == nil {
		return "invalid configuration"
	}
	return fmt.Sprintf("invalid configuration (%d error(s)); first: %s", n, first.Error())
}

// LedgerError is a ledger that fails verification: plan and apply refuse to
// run on it, because a tampered ledger could hide members jitform must remove.
type LedgerError struct {
	Err error
}

func (e *LedgerError) Error() string {
	var ce *state.ChainError
	if errors.As(e.Err, &ce) {
		return fmt.Sprintf("the ledger fails verification at event %v (line %v): %s; nothing was planned or changed. Run `jitform ledger verify` for details, and restore the ledger from a trusted copy",
			ce.Seq, ce.Line, ce.Reason)
	}
	return fmt.Sprintf("the ledger cannot be read: %v; nothing was planned or changed. Run `jitform ledger verify` for details", e.Err)
}

func (e *LedgerError) Unwrap() error { return e.Err }

// Session is a loaded configuration with its targets open and the planner's
// input gathered. Close it to close the targets.
type Session struct {
	Config *config.Config
	Input  planner.Input
	// Events is what the input was replayed from: the verified ledger, or
	// the part of it the replay needs (state.CompactForReplay) when the
	// backend keeps a snapshot.
	Events []state.Event
	// ConfigWarnings are non-fatal diagnostics from loading (for stderr).
	ConfigWarnings hcl.Diagnostics

	opts    Options
	targets map[string]providers.Target // open targets by address
	openErr map[string]error            // targets that did not open
	keep    map[string]bool             // --target selection: group addresses kept; nil = all
}

// Close closes every open target.
func (s *Session) Close() error {
	var errs []error
	for addr, t := range s.targets {
		if err := t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", addr, err))
		}
	}
	s.targets = nil
	return errors.Join(errs...)
}

// LoadConfig loads the repository at dir for plan time at. Errors are a
// *ConfigError; warnings are returned with a non-nil config.
func LoadConfig(dir string, at time.Time) (*config.Config, hcl.Diagnostics, error) {
	return LoadConfigContext(context.Background(), dir, at)
}

// LoadConfigContext is LoadConfig that stops between files and blocks when
// ctx ends (SIGINT, SIGTERM): a huge repository never holds a signal up.
func LoadConfigContext(ctx context.Context, dir string, at time.Time) (*config.Config, hcl.Diagnostics, error) {
	cfg, diags := config.Load(dir, config.LoadOptions{PlanTime: at, Context: ctx})
	if diags.HasErrors() {
		return cfg, diags, &ConfigError{Config: cfg, Diags: diags}
	}
	return cfg, diags, nil
}

// ReadLedgerForAudit reads and verifies the whole ledger for a reader that
// writes nothing (the report): the backend's state.AuditReader when it has
// one. A broken chain is a *LedgerError.
func ReadLedgerForAudit(ctx context.Context, b state.Backend) ([]state.Event, error) {
	ar, ok := b.(state.AuditReader)
	if !ok {
		return ReadLedger(ctx, b)
	}
	events, err := ar.AuditEvents(ctx)
	if err != nil {
		return nil, &LedgerError{Err: err}
	}
	return events, nil
}

// ReadLedger reads and verifies the ledger. A broken chain is a *LedgerError.
func ReadLedger(ctx context.Context, b state.Backend) ([]state.Event, error) {
	events, err := b.Events(ctx)
	if err != nil {
		return nil, &LedgerError{Err: err}
	}
	return events, nil
}

// readLedgerForPlan returns what the planner replays (the verified ledger,
// compacted by the backend's snapshot when it keeps one: see
// state.PlanReader) and the ledger's head. A broken chain is a *LedgerError.
func readLedgerForPlan(ctx context.Context, b state.Backend) ([]state.Event, string, error) {
	events, head, err := state.ReadForPlan(ctx, b)
	if err != nil {
		return nil, "", &LedgerError{Err: err}
	}
	return events, head, nil
}

// Prepare loads the configuration (errors stop everything before any I/O),
// verifies and replays the ledger, then opens the selected targets in
// parallel, resolves the principals each must know and reads its groups.
func Prepare(ctx context.Context, opts Options) (*Session, error) {
	cfg, warns, err := LoadConfigContext(ctx, opts.Dir, opts.at())
	if err != nil {
		return nil, err
	}
	return prepare(ctx, opts, cfg, warns)
}

// prepare is Prepare with the configuration already loaded, so that callers
// can refuse a bad config before taking the lock.
func prepare(ctx context.Context, opts Options, cfg *config.Config, warns hcl.Diagnostics) (*Session, error) {
	if opts.Backend == nil {
		return nil, errors.New("operation: no state backend")
	}
	at := opts.at()
	keep, err := selectGroups(cfg, opts.Targets)
	if err != nil {
		return nil, err
	}
	events, head, err := readLedgerForPlan(ctx, opts.Backend)
	if err != nil {
		return nil, err
	}
	view, _ := planner.ReplayMemo(cfg, events, at, opts.VerifyMemo)

	planCfg := cfg
	if keep != nil {
		// Plan only the selected groups: the planner sees a view of the
		// config without the others (same digest: the files did not change).
		view := *cfg
		view.Groups, view.Targets, view.Accounts = nil, nil, nil
		seen := map[string]bool{}
		for _, g := range cfg.Groups {
			if keep[g.Addr] {
				view.Groups = append(view.Groups, g)
				if !seen[g.Target.Addr] {
					seen[g.Target.Addr] = true
					view.Targets = append(view.Targets, g.Target)
				}
			}
		}
		for _, a := range cfg.Accounts {
			if keep[a.Addr] {
				view.Accounts = append(view.Accounts, a)
				if !seen[a.Target.Addr] {
					seen[a.Target.Addr] = true
					view.Targets = append(view.Targets, a.Target)
				}
			}
		}
		planCfg = &view
	}
	s := &Session{
		Config:         cfg,
		Events:         events,
		ConfigWarnings: warns,
		opts:           opts,
		targets:        map[string]providers.Target{},
		openErr:        map[string]error{},
		keep:           keep,
		Input: planner.Input{
			Config:      planCfg,
			Now:         at,
			Observed:    map[string]providers.Observation{},
			Accounts:    map[string]providers.AccountState{},
			Unsupported: map[string]string{},
			Resolved:    map[string]map[string]providers.Resolution{},
			InGroup:     map[string]map[string]map[string]bool{},
			Ledger:      view,
			LedgerHead:  head,
		},
	}
	if err := s.gather(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// selectGroups turns --target addresses into the set of managed set and
// account addresses to plan; nil means every one.
func selectGroups(cfg *config.Config, addrs []string) (map[string]bool, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	keep := map[string]bool{}
	for _, a := range addrs {
		found := false
		for _, g := range cfg.Groups {
			if g.Addr == a || g.BaseAddr == a || g.Target.Addr == a ||
				targetBase(g.Target) == a {
				keep[g.Addr] = true
				found = true
			}
		}
		for _, acc := range cfg.Accounts {
			if acc.Addr == a || acc.BaseAddr == a || acc.Target.Addr == a || targetBase(acc.Target) == a {
				keep[acc.Addr] = true
				found = true
			}
		}
		if !found {
			if cfg.TargetByAddr(a) != nil {
				// A target without managed groups: nothing to plan there.
				continue
			}
			return nil, fmt.Errorf("--target %s: no target or group has that address (try %s)", a, knownAddrs(cfg))
		}
	}
	return keep, nil
}

// targetBase is target.KIND.NAME for every instance of a multi-host target.
func targetBase(t *config.Target) string { return "target." + t.Kind + "." + t.Name }

func knownAddrs(cfg *config.Config) string {
	var as []string
	for _, t := range cfg.Targets {
		as = append(as, t.Addr)
	}
	for _, g := range cfg.Groups {
		as = append(as, g.Addr)
	}
	if len(as) > 6 {
		as = append(as[:6], "...")
	}
	return strings.Join(as, ", ")
}

// targetWork is what one target must answer.
type targetWork struct {
	target     *config.Target
	groups     []*config.Group
	accounts   []*config.Account
	principals []string
	// eligible: "group:<DN>" entries -> principals to check.
	eligible map[string][]string
}

// work lists, per selected target, its groups and the principals it must
// resolve: declared members, and principals of every grant (repository or
// ledger) whose policy covers one of its groups.
func (s *Session) work() []*targetWork {
	cfg := s.Input.Config
	byTarget := map[string]*targetWork{}
	var order []*targetWork
	for _, g := range cfg.Groups {
		if s.keep != nil && !s.keep[g.Addr] {
			continue
		}
		w := byTarget[g.Target.Addr]
		if w == nil {
			w = &targetWork{target: g.Target, eligible: map[string][]string{}}
			byTarget[g.Target.Addr] = w
			order = append(order, w)
		}
		w.groups = append(w.groups, g)
	}
	for _, a := range cfg.Accounts {
		if s.keep != nil && !s.keep[a.Addr] {
			continue
		}
		w := byTarget[a.Target.Addr]
		if w == nil {
			w = &targetWork{target: a.Target, eligible: map[string][]string{}}
			byTarget[a.Target.Addr] = w
			order = append(order, w)
		}
		w.accounts = append(w.accounts, a)
	}

	// policy address -> principals of its grants
	grantees := map[string][]string{}
	for _, g := range cfg.Grants {
		grantees[g.Policy] = append(grantees[g.Policy], g.Principal)
	}
	if s.Input.Ledger != nil {
		for _, g := range s.Input.Ledger.Grants {
			grantees[g.Policy] = append(grantees[g.Policy], g.Principal)
		}
	}

	for _, w := range order {
		set := map[string]bool{}
		bases := map[string]bool{}
		for _, g := range w.groups {
			bases[g.BaseAddr] = true
			for _, m := range g.Members {
				set[m] = true
			}
		}
		for _, p := range cfg.Policies {
			covers := false
			for _, gb := range p.Sets() {
				if bases[gb] {
					covers = true
					break
				}
			}
			if !covers {
				continue
			}
			for _, pr := range grantees[p.Addr] {
				set[pr] = true
			}
			for _, e := range p.Eligible {
				if strings.HasPrefix(e, "group:") {
					w.eligible[e] = append(w.eligible[e], grantees[p.Addr]...)
				}
			}
		}
		for pr := range set {
			if pr != "" {
				w.principals = append(w.principals, pr)
			}
		}
		sort.Strings(w.principals)
	}
	return order
}

// gather opens the targets (at most Parallelism at once) and fills Input.
// A target that fails to open or read makes its groups unreadable; the
// planner plans nothing for them, and the other targets carry on.
func (s *Session) gather(ctx context.Context) error {
	work := s.work()
	var mu sync.Mutex
	sem := make(chan struct{}, s.opts.parallelism())
	var wg sync.WaitGroup
	for _, w := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func(w *targetWork) {
			defer wg.Done()
			defer func() { <-sem }()
			res := s.gatherTarget(ctx, w)
			mu.Lock()
			defer mu.Unlock()
			addr := w.target.Addr
			if res.open != nil {
				s.targets[addr] = res.open
			}
			if res.openErr != nil {
				s.openErr[addr] = res.openErr
			}
			s.Input.Resolved[addr] = res.resolved
			if len(res.inGroup) > 0 {
				s.Input.InGroup[addr] = res.inGroup
			}
			for g, o := range res.observed {
				s.Input.Observed[g] = o
			}
			for a, st := range res.accounts {
				s.Input.Accounts[a] = st
			}
			for a, why := range res.unsupported {
				s.Input.Unsupported[a] = why
			}
		}(w)
	}
	wg.Wait()
	return ctx.Err()
}

type targetResult struct {
	open     providers.Target
	openErr  error
	resolved map[string]providers.Resolution
	observed map[string]providers.Observation
	inGroup  map[string]map[string]bool
	accounts map[string]providers.AccountState
	// unsupported: sets and accounts the provider does not handle yet.
	unsupported map[string]string
}

func (s *Session) gatherTarget(ctx context.Context, w *targetWork) targetResult {
	addr := w.target.Addr
	res := targetResult{
		resolved:    map[string]providers.Resolution{},
		observed:    map[string]providers.Observation{},
		accounts:    map[string]providers.AccountState{},
		unsupported: map[string]string{},
	}
	fail := func(err error) targetResult {
		for _, g := range w.groups {
			if _, skip := res.unsupported[g.Addr]; !skip {
				res.observed[g.Addr] = providers.Observation{Err: err}
			}
		}
		for _, a := range w.accounts {
			if _, skip := res.unsupported[a.Addr]; !skip {
				res.accounts[a.Addr] = providers.AccountState{Err: err}
			}
		}
		for _, p := range w.principals {
			if _, ok := res.resolved[p]; !ok {
				res.resolved[p] = providers.Resolution{Err: err}
			}
		}
		return res
	}
	s.opts.progress("%s: connecting", addr)
	t, err := s.opts.Registry.Open(ctx, w.target, providers.Options{BaseDir: s.opts.Dir, Progress: s.opts.Progress, Log: s.opts.Log})
	if err == nil && t == nil {
		err = errors.New("the provider returned no connection")
	}
	if err != nil {
		if !strings.Contains(err.Error(), addr) {
			err = fmt.Errorf("%s: open: %w", addr, err)
		}
		res.openErr = err
		return fail(res.openErr)
	}
	res.open = t

	// Sets of a kind the provider does not handle (a sudo_role on a
	// provider without it) and accounts on a provider without an
	// AccountManager are left out, with the reason, for the plan to warn.
	supported := w.groups[:0:0]
	for _, g := range w.groups {
		if providers.Supports(t, g.SetKind()) {
			supported = append(supported, g)
			continue
		}
		res.unsupported[g.Addr] = fmt.Sprintf("%s not supported by this provider yet (%s)", g.SetKind(), w.target.Kind)
	}
	w.groups = supported
	am, manages := t.(providers.AccountManager)
	if !manages {
		for _, a := range w.accounts {
			res.unsupported[a.Addr] = fmt.Sprintf("account not supported by this provider yet (%s)", w.target.Kind)
		}
		w.accounts = nil
	}

	// One call where the target can resolve and read together (a Windows
	// host: one PowerShell run), else Resolve then Read.
	var (
		r   map[string]providers.Resolution
		obs map[string]providers.Observation
	)
	if o, ok := t.(providers.Observer); ok {
		obs, r, err = o.Observe(ctx, w.groups, w.principals)
		if err != nil {
			return fail(fmt.Errorf("read groups on %s: %w", addr, err))
		}
	} else {
		// Resolving and reading are independent: at the same time, so a
		// plan waits for the longer of the two, not their sum.
		var resolveErr error
		resolved := make(chan struct{})
		go func() {
			defer close(resolved)
			if len(w.principals) > 0 {
				r, resolveErr = t.Resolve(ctx, w.principals)
			}
		}()
		obs, err = t.Read(ctx, w.groups)
		<-resolved
		if resolveErr != nil {
			return fail(fmt.Errorf("resolve principals on %s: %w", addr, resolveErr))
		}
		if err != nil {
			return fail(fmt.Errorf("read groups on %s: %w", addr, err))
		}
	}
	for p, v := range r {
		res.resolved[p] = v
	}
	for _, p := range w.principals {
		if _, ok := res.resolved[p]; !ok {
			res.resolved[p] = providers.Resolution{Err: fmt.Errorf("%s did not answer for principal %q", addr, p)}
		}
	}
	for _, g := range w.groups {
		o, ok := obs[g.Addr]
		if !ok {
			o = providers.Observation{Err: fmt.Errorf("%s did not return group %s", addr, g.Addr)}
		}
		res.observed[g.Addr] = o
	}

	if len(w.accounts) > 0 {
		st, err := am.ReadAccounts(ctx, w.accounts)
		for _, a := range w.accounts {
			v, ok := st[a.Addr]
			switch {
			case err != nil:
				v = providers.AccountState{Err: fmt.Errorf("read accounts on %s: %w", addr, err)}
			case !ok:
				v = providers.AccountState{Err: fmt.Errorf("%s did not return account %s", addr, a.Addr)}
			}
			res.accounts[a.Addr] = v
		}
	}

	if ec, ok := t.(providers.EligibilityChecker); ok && len(w.eligible) > 0 {
		res.inGroup = map[string]map[string]bool{}
		byPrincipal := map[string][]string{}
		for entry, ps := range w.eligible {
			for _, p := range ps {
				byPrincipal[p] = append(byPrincipal[p], strings.TrimPrefix(entry, "group:"))
			}
		}
		for p, dns := range byPrincipal {
			in, err := ec.InGroups(ctx, p, dns)
			if err != nil {
				// Not eligible is the safe answer; the planner says why the grant does not count.
				s.opts.progress("%s: cannot check directory-group eligibility of %q: %v", addr, p, err)
				continue
			}
			for dn, ok := range in {
				key := "group:" + dn
				if res.inGroup[key] == nil {
					res.inGroup[key] = map[string]bool{}
				}
				res.inGroup[key][p] = ok
			}
		}
	}
	s.opts.progress("%s: read %d group(s), resolved %d principal(s)", addr, len(w.groups), len(w.principals))
	return res
}

// Plan computes the plan from the session's input, limited to the --target
// selection.
func (s *Session) Plan() (*planner.Plan, error) {
	p, err := planner.Compute(s.Input)
	if err != nil {
		return nil, fmt.Errorf("compute plan: %w", err)
	}
	if s.keep != nil {
		filterPlan(p, s.keep)
		if err := planner.Seal(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func filterPlan(p *planner.Plan, keep map[string]bool) {
	changes := p.Changes[:0]
	for _, c := range p.Changes {
		if keep[c.Group] {
			changes = append(changes, c)
		}
	}
	p.Changes = changes
	groups := p.Groups[:0]
	for _, g := range p.Groups {
		if keep[g.Group] {
			groups = append(groups, g)
		}
	}
	p.Groups = groups
	accounts := p.Accounts[:0]
	for _, a := range p.Accounts {
		if keep[a.Account] {
			accounts = append(accounts, a)
		}
	}
	p.Accounts = accounts
	unreadable := p.Unreadable[:0]
	for _, u := range p.Unreadable {
		if keep[u.Group] {
			unreadable = append(unreadable, u)
		}
	}
	p.Unreadable = unreadable
	for g := range p.Observed {
		if !keep[g] {
			delete(p.Observed, g)
		}
	}
}

// Plan loads, gathers and computes a plan for opts. It takes the state lock
// while reading, so it never observes an apply half-way.
func Plan(ctx context.Context, opts Options) (*planner.Plan, *Session, error) {
	cfg, warns, err := LoadConfigContext(ctx, opts.Dir, opts.at())
	if err != nil {
		return nil, nil, err
	}
	unlock, err := lockState(ctx, opts, cfg, "plan") // targetlock.go
	if err != nil {
		return nil, nil, fmt.Errorf("acquire the state lock: %w", err)
	}
	defer unlock()
	s, err := prepare(ctx, opts, cfg, warns)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	p, err := s.Plan()
	if err != nil {
		return nil, s, err
	}
	return p, s, nil
}
