package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

const grantUsage = `
Usage: jitform [-C DIR] grant <command> [flags] [args]

Request, approve, deny, revoke and review grants in the ledger. Every event a
person writes is signed with their SSH key (the way ssh-keygen -Y sign signs,
namespace "jitform"); the planner counts only approvals whose signature
verifies against the ssh_key declared for an approver of the policy.

Commands:
  request   ask for a principal to hold a policy's groups for a while
  approve   approve a pending request (an approver; never the requester)
  deny      deny a pending request
  revoke    end a grant early (a ledger grant ID, or a grant block's address)
  review    review a break-glass grant (clears its "unreviewed" flag)
  list      list grants: all, --active or --pending
  show      show one grant with every decision and whether it counted

Identity (request, approve, deny, revoke, review):
  --as NAME   a declared actor (actor "NAME" { ssh_key = "..." }); default $JITFORM_ACTOR
  --key FILE  that actor's private key; default $JITFORM_KEY; without it the
              ssh-agent (SSH_AUTH_SOCK) key matching the actor's ssh_key signs

Examples:
  jitform grant request --as alice --policy ops --duration 2h --ticket CHG1042 --reason "patch IIS"
  jitform grant approve g-k3x9q2m7ab --as carol --key ~/.ssh/id_ed25519
  jitform grant approve g-k3x9q2m7ab --as carol --until 2026-11-23T11:00:00Z
  jitform grant revoke g-k3x9q2m7ab --as alice --reason "done early"
  jitform grant list --pending
  jitform grant show g-k3x9q2m7ab --json

"jitform grant <command> --help" shows a command's flags. See docs/grants.md.
`

func cmdGrant(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, strings.TrimLeft(grantUsage, "\n"))
		return exitError
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(a.stdout, strings.TrimLeft(grantUsage, "\n"))
		return exitOK
	case "request":
		return grantRequest(ctx, a, rest)
	case "approve", "deny", "revoke", "review":
		return grantDecide(ctx, a, sub, rest)
	case "list":
		return grantList(ctx, a, rest)
	case "show":
		return grantShow(ctx, a, rest)
	}
	return a.errorf("unknown grant command %q: use request, approve, deny, revoke, review, list or show (jitform grant --help)", sub)
}

// grantEnv is what every grant command reads: the configuration, the
// verified ledger and the clock.
type grantEnv struct {
	cfg    *config.Config
	b      state.Backend
	events []state.Event
	now    time.Time
}

func (a *app) grantEnv(ctx context.Context) (*grantEnv, int, bool) {
	now := time.Now().UTC()
	cfg, warns, err := operation.LoadConfig(a.dir, now)
	a.printDiags(cfg, warns)
	if err != nil {
		return nil, a.fail(err), false
	}
	b, err := a.backend()
	if err != nil {
		return nil, a.errorf("%v", err), false
	}
	events, err := operation.ReadLedger(ctx, b)
	if err != nil {
		return nil, a.errorf("%v", err), false
	}
	return &grantEnv{cfg: cfg, b: b, events: events, now: now}, 0, true
}

// identityFlags adds --as and --key.
func identityFlags(a *app, fs interface {
	StringVar(*string, string, string, string)
}) (as, key *string) {
	as, key = new(string), new(string)
	fs.StringVar(as, "as", a.getenv("JITFORM_ACTOR"), "sign as the declared actor `NAME` (default $JITFORM_ACTOR)")
	fs.StringVar(key, "key", a.getenv("JITFORM_KEY"), "sign with the private key in `FILE` (default $JITFORM_KEY, else the ssh-agent)")
	return as, key
}

// signer finds the key that signs for actor: --key FILE, or the ssh-agent
// key equal to the actor's declared ssh_key. A passphrase is asked for only
// on a terminal.
func (a *app) signer(ctx context.Context, cfg *config.Config, as, keyFile string) (ssh.Signer, func(), error) {
	if err := checkActor(cfg, as, "signing"); err != nil {
		return nil, nil, err
	}
	actor := cfg.ActorByName(as)
	pub, err := state.ParsePublicKey(actor.SSHKey)
	if err != nil {
		return nil, nil, fmt.Errorf("actor %s: %w", as, err)
	}
	if keyFile != "" {
		var ask func() ([]byte, error)
		if a.stdinTTY && a.errTTY {
			ask = func() ([]byte, error) {
				fmt.Fprintf(a.stderr, "Passphrase for %s: ", keyFile)
				defer fmt.Fprintln(a.stderr)
				return term.ReadPassword(int(os.Stdin.Fd()))
			}
		}
		s, err := state.SignerFromKeyFile(keyFile, pub, ask)
		if err != nil {
			return nil, nil, fmt.Errorf("sign as %s: %w", as, err)
		}
		return s, func() {}, nil
	}
	s, closer, err := state.SignerFromAgent(ctx, a.getenv("SSH_AUTH_SOCK"), pub)
	if err != nil {
		return nil, nil, fmt.Errorf("sign as %s: %w", as, err)
	}
	return s, func() { closer.Close() }, nil
}

// checkActor says what is wrong with --as before anything is checked or
// signed: missing, or not a declared actor.
func checkActor(cfg *config.Config, as, doing string) error {
	if as == "" {
		return fmt.Errorf("say who is %s: --as NAME (a declared actor), or set JITFORM_ACTOR", doing)
	}
	if cfg.ActorByName(as) != nil {
		return nil
	}
	names := make([]string, 0, len(cfg.Actors))
	for _, ac := range cfg.Actors {
		names = append(names, ac.Name)
	}
	known := "none are declared"
	if len(names) > 0 {
		known = "declared: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%q is not a declared actor (%s); add actor %q { ssh_key = \"ssh-ed25519 AAAA...\" } to the repository", as, known, as)
}

// appendSigned signs an event as actor and appends it to the ledger.
func (a *app) appendSigned(ctx context.Context, env *grantEnv, typ, as, keyFile string, payload any) (state.Event, error) {
	signer, done, err := a.signer(ctx, env.cfg, as, keyFile)
	if err != nil {
		return state.Event{}, err
	}
	defer done()
	ev, err := state.NewSignedEvent(typ, as, env.now, payload)
	if err != nil {
		return state.Event{}, err
	}
	if err := state.SignEvent(&ev, signer); err != nil {
		return state.Event{}, err
	}
	written, err := env.b.Append(ctx, ev)
	if err != nil {
		return state.Event{}, fmt.Errorf("append the %s event to the ledger: %w", typ, err)
	}
	if len(written) == 1 {
		ev = written[0]
	}
	env.events = append(env.events, ev)
	a.notifyLedger(ctx, env.cfg, env.events, ev)
	return ev, nil
}

// policyArg accepts "ops" and "policy.ops".
func policyArg(cfg *config.Config, s string) (*config.Policy, error) {
	if s == "" {
		return nil, fmt.Errorf("--policy is required: name the policy to request under (e.g. --policy %s)", firstPolicy(cfg))
	}
	addr := s
	if !strings.HasPrefix(addr, "policy.") {
		addr = "policy." + s
	}
	if p := cfg.PolicyByAddr(addr); p != nil {
		return p, nil
	}
	names := make([]string, 0, len(cfg.Policies))
	for _, p := range cfg.Policies {
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("policy %q is not declared (policies: %s)", s, strings.Join(names, ", "))
}

func firstPolicy(cfg *config.Config) string {
	if len(cfg.Policies) > 0 {
		return cfg.Policies[0].Name
	}
	return "NAME"
}

func approvalsNeeded(p *config.Policy) int { return max(p.Approvals, 1) }

const grantRequestUsage = `
Usage: jitform [-C DIR] grant request --policy P [--principal U] --duration D
         [--start T] [--ticket X] --reason "..." [--break-glass] --as NAME [--key FILE]

Asks for principal U (default: the actor signing) to hold the groups of
policy P for D. The request is checked against the policy now (eligibility,
max_duration, windows, ticket_pattern, max_active) and refused with the reason
if it does not conform. The window starts at the approval that completes the
policy's approvals, unless --start names a time. A pending request expires
after the policy's request_ttl (default 24h).

--break-glass (only under a policy with a break_glass block) grants the
signing actor access at once, without approval, for at most the block's
max_duration; the grant is flagged in every plan and list until an approver
runs jitform grant review.

Prints the new grant's ID on stdout (details on stderr), or with --json the
grant as grant show --json prints it.

Examples:
  jitform grant request --as alice --policy ops --duration 2h --ticket CHG1042 --reason "patch IIS"
  ID=$(jitform grant request --as alice --policy ops --duration 90m --start 2026-11-24T07:00 --ticket CHG7 --reason "db upgrade")
  jitform grant request --as alice --policy ops --duration 30m --break-glass --reason "INC42 outage"
`

func grantRequest(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant request", grantRequestUsage)
	policy := fs.String("policy", "", "the policy `P` (ops or policy.ops)")
	principal := fs.String("principal", "", "who gets access, `U` (default: the --as actor)")
	start := fs.String("start", "", "when the window opens, `TIME` (default: at approval)")
	duration := fs.String("duration", "", "how long, `D` (90m, 2h, 1h30m, 2d)")
	ticket := fs.String("ticket", "", "change or incident `ID` (checked against ticket_pattern)")
	reason := fs.String("reason", "", "why access is needed (recorded in the ledger)")
	breakGlass := fs.Bool("break-glass", false, "grant yourself access now, without approval (policy break_glass)")
	asJSON := fs.Bool("json", false, "print the new grant as JSON")
	as, key := identityFlags(a, fs)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("grant request takes no arguments (got %q); use --reason \"...\" for the reason", fs.Args())
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	if err := checkActor(env.cfg, *as, "requesting"); err != nil {
		return a.errorf("%v", err)
	}
	pol, err := policyArg(env.cfg, *policy)
	if err != nil {
		return a.errorf("%v", err)
	}
	if *principal == "" {
		*principal = *as
	}
	q := state.GrantRequest{Policy: pol.Addr, Principal: *principal, Ticket: *ticket, Reason: strings.TrimSpace(*reason), BreakGlass: *breakGlass}
	if refusal := checkRequest(env, pol, &q, *as, *start, *duration); refusal != "" {
		return a.errorf("request refused: %s", refusal)
	}
	id, err := state.NewGrantID()
	if err != nil {
		return a.errorf("%v", err)
	}
	q.ID = id
	if _, err := a.appendSigned(ctx, env, state.EventRequest, *as, *key, q); err != nil {
		return a.errorf("%v", err)
	}
	rec, warns := findRecord(env, id)
	if rec == nil || rec.Status == planner.StatusInvalid {
		// The planner must count what request just wrote; if not, say so.
		return a.errorf("the request was written but the planner does not count it: %s", warningsFor(warns, id))
	}
	if *asJSON {
		return a.writeJSON(grantToJSON(env.cfg, rec, env.now))
	}
	fmt.Fprintln(a.stdout, id)
	if q.BreakGlass {
		fmt.Fprintf(a.stderr, "Break-glass grant %s: %s holds %s from %s to %s, without approval.\n"+
			"It is flagged UNREVIEWED in every plan until an approver runs: jitform grant review %s --as NAME\n",
			id, q.Principal, pol.Addr, stampOf(rec.Start), stampOf(rec.End), id)
		return exitOK
	}
	when := "at approval"
	if q.Start != nil {
		when = "at " + stampOf(*q.Start)
	}
	fmt.Fprintf(a.stderr, "Requested %s: %s in %s for %s, window starting %s.\n"+
		"It needs %d approval(s) from %s before %s: jitform grant approve %s --as NAME\n",
		id, q.Principal, pol.Addr, rec.Duration, when, approvalsNeeded(pol),
		strings.Join(without(pol.Approvers, *as, q.Principal), ", "), stampOf(rec.ExpiresAt), id)
	return exitOK
}

// checkRequest applies the policy's rules to a request before it is
// written, and fills in its start and duration. It returns "" or a sentence
// saying what is wrong and how to fix it.
func checkRequest(env *grantEnv, pol *config.Policy, q *state.GrantRequest, as, startArg, durArg string) string {
	now := env.now
	if q.Reason == "" {
		return "--reason is required: say why access is needed (it is recorded in the ledger)"
	}
	if durArg == "" {
		return fmt.Sprintf("--duration is required (e.g. --duration 2h; %s allows at most %s)", pol.Addr, pol.MaxDuration)
	}
	d, err := config.ParseDuration(durArg)
	if err != nil || d <= 0 {
		return fmt.Sprintf("--duration %q is not a positive duration like 90m, 2h, 1h30m or 2d", durArg)
	}
	q.Duration = d.String()
	start := now
	if startArg != "" {
		t, err := parseAt(startArg, now)
		if err != nil {
			return "--start: " + err.Error()
		}
		if !t.Add(d).After(now) {
			return fmt.Sprintf("the window %s to %s is already over; choose a later --start, or leave it out to start at approval",
				stampOf(t), stampOf(t.Add(d)))
		}
		q.Start, start = &t, t
	}
	if actor := env.cfg.ActorByName(q.Principal); actor != nil && q.Principal != as {
		return fmt.Sprintf("%s is a declared actor, so only %s may request access for %s: run it --as %s",
			q.Principal, q.Principal, q.Principal, q.Principal)
	}
	if env.cfg.ActorByName(q.Principal) == nil && !slices.Contains(pol.Eligible, as) {
		return fmt.Sprintf("%s may not request on behalf of %s: only actors eligible under %s (%s) may",
			as, q.Principal, pol.Addr, strings.Join(pol.Eligible, ", "))
	}
	if q.BreakGlass {
		switch {
		case pol.BreakGlass == nil:
			return fmt.Sprintf("%s has no break_glass block, so it allows no break-glass grants; request normally and ask an approver (%s)",
				pol.Addr, strings.Join(pol.Approvers, ", "))
		case q.Principal != as:
			return fmt.Sprintf("a break-glass grant is for oneself: %s cannot break glass for %s", as, q.Principal)
		case d > pol.BreakGlass.MaxDuration:
			return fmt.Sprintf("break-glass --duration %s is longer than %s allows (break_glass max_duration %s)",
				d, pol.Addr, pol.BreakGlass.MaxDuration)
		}
	} else if pol.Approval != config.ApprovalLedger {
		return fmt.Sprintf("%s takes approvals by repository review (approval = %q): add a grant block in a pull request, "+
			"or set approval = %q on the policy to approve in the ledger", pol.Addr, pol.Approval, config.ApprovalLedger)
	}

	// The policy's own rules, as the planner will apply them. Approvers are
	// filled with those who could approve, so that only an unapprovable
	// policy (too few approvers besides the principal) is refused here.
	spec := config.GrantSpec{Principal: q.Principal, Start: start, End: start.Add(d), Ticket: q.Ticket, BreakGlass: q.BreakGlass}
	if !q.BreakGlass {
		could := without(pol.Approvers, as, q.Principal)
		if len(could) > approvalsNeeded(pol) {
			could = could[:approvalsNeeded(pol)]
		}
		spec.Approvers = could
	}
	// Eligibility through directory groups needs the directory: it is
	// checked at plan time, where the planner reads it.
	viol := pol.Check(spec, func(string) bool { return true })
	if len(viol) > 0 {
		parts := make([]string, len(viol))
		for i, v := range viol {
			parts[i] = v.Field + ": " + v.Message
		}
		return fmt.Sprintf("it does not conform to %s: %s", pol.Addr, strings.Join(parts, "; "))
	}

	if pol.MaxActive > 0 {
		recs, _ := planner.LedgerGrants(env.cfg, env.events, now)
		var held []string
		var firstEnd time.Time
		for _, r := range recs {
			if r.Source != "ledger" || r.Policy != pol.Addr || r.Principal != q.Principal || r.Status != planner.StatusApproved {
				continue
			}
			if r.End.After(start) && r.Start.Before(start.Add(d)) {
				held = append(held, r.ID)
				if firstEnd.IsZero() || r.End.Before(firstEnd) {
					firstEnd = r.End
				}
			}
		}
		if len(held) >= pol.MaxActive {
			return fmt.Sprintf("%s already holds %d grant(s) under %s overlapping this window (%s) and max_active is %d: "+
				"revoke one (jitform grant revoke ID --reason ...) or request from %s on",
				q.Principal, len(held), pol.Addr, strings.Join(held, ", "), pol.MaxActive, stampOf(firstEnd))
		}
	}
	return ""
}

const grantDecideUsage = `
Usage: jitform [-C DIR] grant approve ID [--until T] --as NAME [--key FILE]
       jitform [-C DIR] grant deny ID --reason "..." --as NAME [--key FILE]
       jitform [-C DIR] grant revoke ID --reason "..." --as NAME [--key FILE]
       jitform [-C DIR] grant review ID [--reason "..."] --as NAME [--key FILE]

approve  an approver of the policy approves a pending request; never the
         requester or principal. --until shortens the window (never lengthens
         it). With approvals = N, N distinct approvers are needed; the window
         starts at the approval that completes them unless the request named
         a start.
deny     an approver (or the requester, withdrawing it) denies a pending request.
revoke   ends a grant now: the next plan removes the member. ID is a ledger
         grant ID or a grant block's address (grant.NAME). An approver of the
         policy, the requester or the principal (an early check-in) may revoke.
review   an approver other than the principal reviews a break-glass grant,
         clearing its "unreviewed" flag.

Each writes one event signed with the actor's SSH key.

Examples:
  jitform grant approve g-k3x9q2m7ab --as carol
  jitform grant approve g-k3x9q2m7ab --as carol --until +1h
  jitform grant deny g-k3x9q2m7ab --as carol --reason "no change ticket"
  jitform grant revoke grant.alice_chg1042 --as alice --reason "done early"
  jitform grant review g-k3x9q2m7ab --as dave --reason "INC42 post-mortem done"
`

func grantDecide(ctx context.Context, a *app, typ string, args []string) int {
	fs := a.flagSet("grant "+typ, grantDecideUsage)
	reason := fs.String("reason", "", "why (recorded in the ledger; required for deny and revoke)")
	var until *string
	if typ == state.EventApprove {
		until = fs.String("until", "", "shorten the window to end at `TIME` (RFC 3339, or +1h from now)")
	}
	asJSON := fs.Bool("json", false, "print the grant afterwards as JSON")
	as, key := identityFlags(a, fs)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("grant %s takes one grant ID (got %d arguments); jitform grant list shows the IDs", typ, fs.NArg())
	}
	id := fs.Arg(0)
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	if err := checkActor(env.cfg, *as, "signing"); err != nil {
		return a.errorf("%v", err)
	}
	if (typ == state.EventDeny || typ == state.EventRevoke) && strings.TrimSpace(*reason) == "" {
		return a.errorf("--reason is required for grant %s: say why (it is recorded in the ledger)", typ)
	}
	d := state.GrantDecision{Grant: id, Reason: strings.TrimSpace(*reason)}

	if typ == state.EventRevoke && !state.IsGrantID(id) {
		return a.revokeRepository(ctx, env, d, *as, *key)
	}
	rec, _ := findRecord(env, id)
	if rec == nil {
		return a.errorf("no grant %s in the ledger; jitform grant list shows the grants", id)
	}
	var refusal string
	switch typ {
	case state.EventApprove:
		refusal = checkApprove(env, rec, *as, until, &d)
	case state.EventDeny:
		refusal = checkDeny(env, rec, *as)
	case state.EventRevoke:
		refusal = checkRevoke(env, rec, *as)
	case state.EventReview:
		refusal = checkReview(env, rec, *as)
	}
	if refusal != "" {
		return a.errorf("%s refused: %s", typ, refusal)
	}
	ev, err := a.appendSigned(ctx, env, typ, *as, *key, d)
	if err != nil {
		return a.errorf("%v", err)
	}
	after, warns := findRecord(env, id)
	if after == nil || !decisionCounted(after, ev.Seq) {
		return a.errorf("the %s was written but the planner does not count it: %s", typ, warningsFor(warns, id))
	}
	if *asJSON {
		return a.writeJSON(grantToJSON(env.cfg, after, env.now))
	}
	a.describeOutcome(env, typ, after)
	return exitOK
}

func decisionCounted(rec *planner.GrantRecord, seq int64) bool {
	for _, d := range rec.Decisions {
		if d.Seq == seq {
			return d.Counted
		}
	}
	return false
}

func (a *app) describeOutcome(env *grantEnv, typ string, rec *planner.GrantRecord) {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch typ {
	case state.EventApprove:
		if rec.Pending {
			more := approvalsNeeded(pol) - len(rec.Approvers)
			fmt.Fprintf(a.stdout, "Approval of %s recorded (%d of %d); it needs %d more from: %s.\n", rec.ID,
				len(rec.Approvers), approvalsNeeded(pol), more,
				strings.Join(without(pol.Approvers, append([]string{rec.RequestedBy, rec.Principal}, rec.Approvers...)...), ", "))
			return
		}
		fmt.Fprintf(a.stdout, "Approved %s (by %s): %s holds %s from %s to %s; the next plan adds the member when the window is open.\n",
			rec.ID, strings.Join(rec.Approvers, ", "), rec.Principal, rec.Policy, stampOf(rec.Start), stampOf(rec.End))
	case state.EventDeny:
		fmt.Fprintf(a.stdout, "Denied %s.\n", rec.ID)
	case state.EventRevoke:
		fmt.Fprintf(a.stdout, "Revoked %s at %s; the next plan removes %s from %s's groups.\n", rec.ID, stampOf(rec.RevokedAt), rec.Principal, rec.Policy)
	case state.EventReview:
		fmt.Fprintf(a.stdout, "Reviewed break-glass grant %s; it is no longer flagged unreviewed.\n", rec.ID)
	}
}

func checkApprove(env *grantEnv, rec *planner.GrantRecord, as string, until *string, d *state.GrantDecision) string {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch {
	case rec.Status == planner.StatusInvalid:
		return "the request does not count (" + rec.Refusal + "); ask for a new request"
	case pol == nil:
		return rec.Policy + " is no longer declared"
	case rec.BreakGlass:
		return "a break-glass grant needs no approval; review it instead: jitform grant review " + rec.ID
	case rec.Status == planner.StatusExpired:
		return fmt.Sprintf("the request expired at %s (request_ttl %s); ask the requester for a new one", stampOf(rec.ExpiresAt), planner.RequestTTLOf(pol))
	case rec.Status == planner.StatusDenied:
		return "the request was denied by " + rec.DeniedBy
	case rec.Status == planner.StatusRevoked:
		return "the grant was revoked"
	case pol.Approval != config.ApprovalLedger:
		return fmt.Sprintf("%s takes approvals by repository review (approval = %q), not in the ledger", pol.Addr, pol.Approval)
	case !slices.Contains(pol.Approvers, as):
		return fmt.Sprintf("%s is not an approver of %s (approvers: %s)", as, pol.Addr, strings.Join(pol.Approvers, ", "))
	case as == rec.RequestedBy || as == rec.Principal:
		return fmt.Sprintf("%s requested this grant (or is its principal) and cannot approve it; ask one of: %s",
			as, strings.Join(without(pol.Approvers, rec.RequestedBy, rec.Principal), ", "))
	case slices.Contains(rec.Approvers, as):
		return as + " already approved it; each approver counts once"
	case !rec.Pending:
		return fmt.Sprintf("it is already approved (by %s)", strings.Join(rec.Approvers, ", "))
	}
	end := rec.End
	if rec.StartAtApproval && len(rec.Approvers)+1 >= approvalsNeeded(pol) {
		end = env.now.Add(rec.Duration) // this approval opens the window
	}
	if !end.IsZero() && !end.After(env.now) {
		return "the requested window ended at " + stampOf(end)
	}
	if until != nil && *until != "" {
		t, err := parseAt(*until, env.now)
		if err != nil {
			return "--until: " + err.Error()
		}
		if !t.After(env.now) {
			return fmt.Sprintf("--until %s is not in the future; to refuse the request use jitform grant deny %s", stampOf(t), rec.ID)
		}
		if !end.IsZero() && t.After(end) {
			return fmt.Sprintf("--until %s is after the window's end %s: an approver may shorten a window, never lengthen it", stampOf(t), stampOf(end))
		}
		if !rec.Start.IsZero() && !t.After(rec.Start) {
			return fmt.Sprintf("--until %s is not after the window's start %s", stampOf(t), stampOf(rec.Start))
		}
		d.Until = &t
	}
	return ""
}

func checkDeny(env *grantEnv, rec *planner.GrantRecord, as string) string {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch {
	case rec.Status == planner.StatusInvalid:
		return "the request does not count (" + rec.Refusal + "); nothing to deny"
	case !rec.Pending:
		if rec.Status == planner.StatusApproved {
			return "it is already approved; end it with jitform grant revoke " + rec.ID + " --reason ..."
		}
		return "it is no longer pending (" + rec.Status + ")"
	case pol == nil || !(slices.Contains(pol.Approvers, as) || as == rec.RequestedBy):
		return fmt.Sprintf("%s is neither an approver of %s nor the requester", as, rec.Policy)
	}
	return ""
}

func checkRevoke(env *grantEnv, rec *planner.GrantRecord, as string) string {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch {
	case rec.Status == planner.StatusInvalid:
		return "the request does not count (" + rec.Refusal + "); nothing to revoke"
	case rec.Revoked:
		return "it was already revoked at " + stampOf(rec.RevokedAt) + " by " + rec.RevokedBy
	case rec.Status == planner.StatusDenied || rec.Status == planner.StatusExpired:
		return "it is " + rec.Status + "; it grants nothing"
	case !rec.End.IsZero() && !rec.End.After(env.now):
		return "its window already ended at " + stampOf(rec.End)
	case as != rec.RequestedBy && as != rec.Principal && (pol == nil || !slices.Contains(pol.Approvers, as)):
		return fmt.Sprintf("%s is neither an approver of %s, the requester nor the principal", as, rec.Policy)
	}
	return ""
}

func checkReview(env *grantEnv, rec *planner.GrantRecord, as string) string {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch {
	case !rec.BreakGlass || rec.Status == planner.StatusInvalid:
		return rec.ID + " is not a break-glass grant; only break-glass grants are reviewed"
	case pol == nil || !slices.Contains(pol.Approvers, as):
		return fmt.Sprintf("%s is not an approver of %s (approvers: %s)", as, rec.Policy, strings.Join(policyApprovers(pol), ", "))
	case as == rec.Principal || as == rec.RequestedBy:
		return as + " cannot review their own break-glass grant; ask one of: " + strings.Join(without(pol.Approvers, as), ", ")
	case !rec.Unreviewed:
		return "it was already reviewed by " + rec.ReviewedBy
	}
	return ""
}

func policyApprovers(p *config.Policy) []string {
	if p == nil {
		return nil
	}
	return p.Approvers
}

// revokeRepository revokes a grant block (grant.NAME, or NAME).
func (a *app) revokeRepository(ctx context.Context, env *grantEnv, d state.GrantDecision, as, key string) int {
	addr := d.Grant
	if !strings.HasPrefix(addr, "grant.") {
		addr = "grant." + addr
	}
	var g *config.Grant
	for _, cg := range env.cfg.Grants {
		if cg.Addr == addr {
			g = cg
		}
	}
	if g == nil {
		return a.errorf("no grant %s: neither a ledger grant ID (g-...) nor a grant block in the repository; jitform grant list shows both", d.Grant)
	}
	d.Grant = addr
	pol := env.cfg.PolicyByAddr(g.Policy)
	view, _ := planner.Replay(env.cfg, env.events, env.now)
	switch {
	case !view.RevokedRepo[addr].IsZero():
		return a.errorf("revoke refused: %s was already revoked at %s", addr, stampOf(view.RevokedRepo[addr]))
	case !g.End().After(env.now):
		return a.errorf("revoke refused: %s already ended at %s", addr, stampOf(g.End()))
	case as != g.Principal && (pol == nil || !slices.Contains(pol.Approvers, as)):
		return a.errorf("revoke refused: %s is neither an approver of %s nor the principal of %s", as, g.Policy, addr)
	}
	if _, err := a.appendSigned(ctx, env, state.EventRevoke, as, key, d); err != nil {
		return a.errorf("%v", err)
	}
	view, warns := planner.Replay(env.cfg, env.events, env.now)
	if view.RevokedRepo[addr].IsZero() {
		return a.errorf("the revoke was written but the planner does not count it: %s", warningsFor(warns, addr))
	}
	fmt.Fprintf(a.stdout, "Revoked %s at %s; the next plan removes %s from %s's groups. Delete the grant block in your next change.\n",
		addr, stampOf(env.now), g.Principal, g.Policy)
	return exitOK
}

const grantListUsage = `
Usage: jitform [-C DIR] grant list [--active | --pending] [--json]

Lists the grants in the ledger and the repository's grant blocks, newest
request first: ID, status, principal, policy, window, verified approvers and
flags (BREAK-GLASS, UNREVIEWED). Reads only the configuration and the ledger.

  --active    only grants whose window is open now (and that count)
  --pending   only requests waiting for approval

Examples:
  jitform grant list --pending
  jitform grant list --json | jq '.grants[] | select(.unreviewed)'
`

func grantList(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant list", grantListUsage)
	active := fs.Bool("active", false, "only grants in force now")
	pending := fs.Bool("pending", false, "only requests waiting for approval")
	asJSON := fs.Bool("json", false, "print as JSON (docs/grants.md)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("grant list takes no arguments (got %q)", fs.Args())
	}
	if *active && *pending {
		return a.errorf("--active and --pending exclude each other; use one, or neither for all grants")
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	all, warns := allGrants(env)
	var out []grantJSON
	for _, g := range all {
		if (*active && !g.Active) || (*pending && g.Status != planner.StatusPending) {
			continue
		}
		out = append(out, g)
	}
	if *asJSON {
		doc := grantListJSON{FormatVersion: grantJSONVersion, At: env.now, Grants: out, Warnings: warns}
		if doc.Grants == nil {
			doc.Grants = []grantJSON{}
		}
		return a.writeJSON(doc)
	}
	for _, w := range warns {
		fmt.Fprintf(a.stderr, "Warning: %s\n", w.Summary)
	}
	if len(out) == 0 {
		switch {
		case *active:
			fmt.Fprintln(a.stdout, "No grant is in force now.")
		case *pending:
			fmt.Fprintln(a.stdout, "No request is waiting for approval.")
		default:
			fmt.Fprintln(a.stdout, "No grants: none in the ledger, no grant blocks in the repository.")
		}
		return exitOK
	}
	writeGrantTable(a.stdout, out)
	return exitOK
}

func writeGrantTable(w io.Writer, gs []grantJSON) {
	rows := [][]string{{"ID", "STATUS", "PRINCIPAL", "POLICY", "WINDOW", "APPROVERS", "FLAGS"}}
	for _, g := range gs {
		window := "at approval, " + g.Duration
		if g.Start != nil && g.End != nil {
			window = stampOf(*g.Start) + " - " + stampOf(*g.End)
		}
		status := g.Status
		if g.Active {
			status = "active"
		}
		var flags []string
		if g.BreakGlass {
			flags = append(flags, "BREAK-GLASS")
		}
		if g.Unreviewed {
			flags = append(flags, "UNREVIEWED")
		}
		approvers := strings.Join(g.Approvers, ",")
		if approvers == "" {
			approvers = "-"
		}
		rows = append(rows, []string{g.ID, status, g.Principal, g.Policy, window, approvers, strings.Join(flags, " ")})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len(c)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

const grantShowUsage = `
Usage: jitform [-C DIR] grant show ID [--json]

Shows one grant: the request, its window, and every decision (approve, deny,
revoke, review) with whether it counted and, if not, why (a forged or wrong
signature, an actor who is not an approver, the requester approving, an
approval after the request expired ...). ID is a ledger grant ID or a grant
block's address (grant.NAME).

Examples:
  jitform grant show g-k3x9q2m7ab
  jitform grant show g-k3x9q2m7ab --json | jq '.decisions[] | select(.counted | not)'
`

func grantShow(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant show", grantShowUsage)
	asJSON := fs.Bool("json", false, "print as JSON (docs/grants.md)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("grant show takes one grant ID (got %d arguments); jitform grant list shows the IDs", fs.NArg())
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	id := fs.Arg(0)
	all, _ := allGrants(env)
	i := slices.IndexFunc(all, func(g grantJSON) bool { return g.ID == id || g.ID == "grant."+id })
	if i < 0 {
		return a.errorf("no grant %s in the ledger or the repository; jitform grant list shows the grants", id)
	}
	g := all[i]
	if *asJSON {
		return a.writeJSON(g)
	}
	w := a.stdout
	status := g.Status
	if g.Active {
		status += ", active now"
	}
	fmt.Fprintf(w, "Grant %s (%s, %s)\n", g.ID, g.Source, status)
	fmt.Fprintf(w, "  policy:     %s\n  principal:  %s\n", g.Policy, g.Principal)
	if g.RequestedBy != "" {
		fmt.Fprintf(w, "  requested:  by %s at %s\n", g.RequestedBy, stampOf(*g.RequestedAt))
	}
	if g.Start != nil && g.End != nil {
		fmt.Fprintf(w, "  window:     %s - %s\n", stampOf(*g.Start), stampOf(*g.End))
	} else {
		fmt.Fprintf(w, "  window:     %s, starting at approval\n", g.Duration)
	}
	if g.Ticket != "" {
		fmt.Fprintf(w, "  ticket:     %s\n", g.Ticket)
	}
	if g.Reason != "" {
		fmt.Fprintf(w, "  reason:     %s\n", g.Reason)
	}
	fmt.Fprintf(w, "  approvers:  %s (%d needed)\n", orDash(strings.Join(g.Approvers, ", ")), g.ApprovalsNeeded)
	if g.ExpiresAt != nil && g.Status == planner.StatusPending {
		fmt.Fprintf(w, "  expires:    %s unless approved\n", stampOf(*g.ExpiresAt))
	}
	if g.BreakGlass {
		rv := "UNREVIEWED"
		if !g.Unreviewed {
			rv = "reviewed by " + g.ReviewedBy
		}
		fmt.Fprintf(w, "  break-glass: yes, %s\n", rv)
	}
	if g.RevokedAt != nil {
		fmt.Fprintf(w, "  revoked:    at %s by %s: %s\n", stampOf(*g.RevokedAt), g.RevokedBy, g.RevokeReason)
	}
	if g.DeniedBy != "" {
		fmt.Fprintf(w, "  denied:     by %s: %s\n", g.DeniedBy, g.DenyReason)
	}
	if g.Refusal != "" {
		fmt.Fprintf(w, "  NOT COUNTED: %s\n", g.Refusal)
	}
	if len(g.Decisions) > 0 {
		fmt.Fprintln(w, "  decisions:")
		for _, d := range g.Decisions {
			verdict := "counted"
			if !d.Counted {
				verdict = "NOT COUNTED: " + d.Why
			} else if d.Why != "" {
				verdict += "; " + d.Why
			}
			extra := ""
			if d.Until != nil {
				extra = " until " + stampOf(*d.Until)
			}
			fmt.Fprintf(w, "    #%d %s %s by %s%s: %s\n", d.Seq, stampOf(d.At), d.Type, d.Actor, extra, verdict)
		}
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// findRecord replays the ledger and returns the record of grant id.
func findRecord(env *grantEnv, id string) (*planner.GrantRecord, []planner.Warning) {
	recs, warns := planner.LedgerGrants(env.cfg, env.events, env.now)
	for i := range recs {
		if recs[i].ID == id {
			return &recs[i], warns
		}
	}
	return nil, warns
}

// warningsFor picks the planner warnings that mention id.
func warningsFor(warns []planner.Warning, id string) string {
	var out []string
	for _, w := range warns {
		if strings.Contains(w.Summary, id) {
			out = append(out, w.Summary)
		}
	}
	if len(out) == 0 {
		return "no reason given; run jitform grant show " + id
	}
	return strings.Join(out, "; ")
}

// without returns xs minus the given names, in order.
func without(xs []string, drop ...string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(drop, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// describeGrantEvent summarises a grant event for `ledger log`, flagging
// break-glass requests so that they stand out in the audit trail.
func describeGrantEvent(ev state.Event) (string, bool) {
	if !state.IsGrantEvent(ev.Type) {
		return "", false
	}
	signed := ""
	if ev.Sig == "" {
		signed = " (UNSIGNED)"
	}
	if ev.Type == state.EventRequest {
		q, err := state.DecodeGrantRequest(ev)
		if err != nil {
			return "", false
		}
		s := fmt.Sprintf("%s: %s in %s for %s", q.ID, q.Principal, q.Policy, q.Duration)
		if q.Start != nil {
			s += " from " + stampOf(*q.Start)
		}
		if q.Ticket != "" {
			s += ", ticket " + q.Ticket
		}
		if q.BreakGlass {
			s += " BREAK-GLASS"
		}
		return s + signed, true
	}
	d, err := state.DecodeGrantDecision(ev)
	if err != nil {
		return "", false
	}
	s := d.Grant
	if d.Until != nil {
		s += " until " + stampOf(*d.Until)
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s + signed, true
}
