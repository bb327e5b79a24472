// Package grants is the grant workflow as one pure state machine: the
// states a ledger grant goes through (pending, approved, denied, expired,
// revoked, refused, invalid) and the transitions between them (request,
// approve, deny, revoke, review, break-glass).
//
// One function decides each transition. The CLI calls it through Check
// before it signs and appends an event, so a refusal is shown before
// anything is written; the planner calls it through Apply for every event
// in the ledger, so what was accepted is exactly what counts, and a forged
// or out-of-order event is refused by the same rule. The package does no
// I/O: time is passed in, and signatures are checked through Verifier.
//
// Imports flow one way: cmd -> planner and grants -> config and state.
package grants

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// DefaultRequestTTL is how long a request waits for its approvals when the
// policy does not set request_ttl.
const DefaultRequestTTL = 24 * time.Hour

// Grant statuses, as `grant list` prints them.
const (
	StatusPending  = "pending"  // waiting for approvals
	StatusApproved = "approved" // approved; its window may be ahead, open or over (see Start/End)
	StatusDenied   = "denied"
	StatusExpired  = "expired" // not approved within request_ttl
	StatusRevoked  = "revoked" // ended early
	StatusRefused  = "refused" // does not count: see Refusal
	StatusInvalid  = "invalid" // the request itself does not count (bad signature, unknown policy ...)
)

// Verifier checks an event's signature against its actor's declared key.
// The error says why it does not verify; errors wrapping state.ErrUnsigned,
// state.ErrWrongKey, state.ErrBadSignature or state.ErrMalformedSignature
// are named as such. SSHVerifier is the implementation jitform uses.
type Verifier interface {
	Verify(ev state.Event) error
}

// Record is everything the ledger says about one grant: the request, each
// decision and whether it counted, and the state it is in.
type Record struct {
	ID        string // ledger grant ID, or grant.NAME for a revoked grant block
	Source    string // "ledger", or "repository" for a revoked grant block
	Policy    string // policy address
	Principal string
	Start     time.Time
	End       time.Time
	Ticket    string
	Reason    string
	// Approvers are the distinct approvers whose approvals counted.
	Approvers  []string
	Revoked    bool
	RevokedAt  time.Time
	BreakGlass bool
	Unreviewed bool // break-glass grant not yet reviewed
	Pending    bool // requested, not yet approved
	Denied     bool
	Expired    bool   // pending request past the policy's request_ttl
	Subject    string // "ledger seq N" of the request, for warnings

	Status      string
	RequestedBy string
	RequestedAt time.Time
	// RequestHash is the ledger hash of the request event: every decision
	// on the grant must name it (GrantDecision.Request).
	RequestHash string
	Duration    time.Duration // as requested
	// StartAtApproval: the request named no start; the window opens at the
	// approval that completes the policy's approvals.
	StartAtApproval bool
	ExpiresAt       time.Time // pending: when the request expires
	ApprovedAt      time.Time // when the last needed approval arrived
	Decisions       []Decision
	DeniedBy        string
	DenyReason      string
	RevokedBy       string
	RevokeReason    string
	ReviewedBy      string
	ReviewedAt      time.Time
	// PolicyGone: the request names a policy that is not declared (any more).
	PolicyGone bool
	// Refusal says why the grant does not count (Status refused or invalid).
	Refusal string
	// Events are the ledger sequence numbers of the grant's events.
	Events []int64

	// untilBound: the earliest "until" of approvals given before the
	// window's start was known (start at approval).
	untilBound time.Time
}

// Decision is one signed event about a grant and whether it counted.
type Decision struct {
	Seq     int64
	Type    string
	Actor   string
	At      time.Time
	Until   *time.Time
	Reason  string
	Counted bool
	Why     string // when not counted: why (when counted: what was ignored)
}

// Warning is something the replay found that an operator should read: an
// event that does not count, and why.
type Warning struct {
	Summary string
	Detail  string
	Subject string // "ledger seq N"
}

// Refusal is a transition's "no": which rule refused it and why. Reason is
// what the ledger replay says (plan warnings, grant show); Advice, when
// set, is the same refusal put to the person at the keyboard, with what to
// do instead (the CLI prints it).
type Refusal struct {
	Rule   string
	Reason string
	Advice string
}

// Interactive is the refusal as the CLI shows it.
func (r *Refusal) Interactive() string {
	if r.Advice != "" {
		return r.Advice
	}
	return r.Reason
}

func (r *Refusal) Error() string { return r.Reason }

// Rule names, one per rule; tests are named for them.
const (
	RuleMalformed          = "malformed"
	RuleDuplicateID        = "duplicate-id"
	RuleSignature          = "signature"
	RulePolicyGone         = "policy-gone"
	RuleWindowOver         = "window-over"
	RuleActorOnlySelf      = "actor-requests-for-self"
	RuleRequesterEligible  = "requester-eligible"
	RuleNoBreakGlass       = "no-break-glass-block"
	RuleBreakGlassSelf     = "break-glass-for-oneself"
	RuleBreakGlassMax      = "break-glass-max-duration"
	RuleBreakGlassNow      = "break-glass-starts-now"
	RuleBreakGlassBudget   = "break-glass-max-per-day"
	RuleRepositoryApproval = "repository-approval"
	RuleConforms           = "conforms-to-policy"
	RuleMaxActive          = "max-active"
	RuleUnknownGrant       = "unknown-grant"
	RuleRequestInvalid     = "request-invalid"
	RuleBinding            = "bound-to-request"
	RuleNotApprover        = "approver"
	RuleSelfApproval       = "no-self-approval"
	RuleBreakGlassApproval = "break-glass-needs-no-approval"
	RuleDenied             = "denied"
	RuleRevoked            = "revoked"
	RuleExpired            = "expired"
	RuleOnceEach           = "one-approval-per-approver"
	RuleAlreadyApproved    = "already-approved"
	RuleBeforeRequest      = "dated-before-request"
	RuleWindowEnded        = "window-ended"
	RuleUntil              = "until-shortens"
	RuleNotPending         = "not-pending"
	RuleMayDeny            = "who-may-deny"
	RuleMayRevoke          = "who-may-revoke"
	RuleNothingToRevoke    = "nothing-to-revoke"
	RuleNotBreakGlass      = "review-break-glass-only"
	RuleSelfReview         = "no-self-review"
	RuleReviewed           = "already-reviewed"
	RuleNoBlock            = "no-grant-block"
	RuleBlockBinding       = "bound-to-grant-block"
)

// Book is the state of every grant in a ledger, built event by event.
type Book struct {
	cfg *config.Config
	v   Verifier

	recs  map[string]*Record
	order []string
	// repo: grant blocks revoked in the ledger, by address.
	repo      map[string]*Record
	repoOrder []string
	// sigs: armored signature -> the first event that carried it, to name
	// a replayed signature as such rather than as a mere forgery.
	sigs  map[string]state.Event
	warns []Warning
	// checking: evaluating a proposed event (Check), not replaying one.
	checking bool
	finished bool
}

// New returns an empty Book for the configuration, checking signatures
// with v.
func New(cfg *config.Config, v Verifier) *Book {
	return &Book{cfg: cfg, v: v, recs: map[string]*Record{}, repo: map[string]*Record{}, sigs: map[string]state.Event{}}
}

// Replay builds the Book of a whole ledger as it stands at now: Apply for
// every event, in order, then Finish.
func Replay(cfg *config.Config, v Verifier, events []state.Event, now time.Time) *Book {
	b := New(cfg, v)
	for _, ev := range events {
		b.Apply(ev)
	}
	b.Finish(now)
	return b
}

// Records returns the ledger grants in request order, then the revoked
// grant blocks (Source "repository") in the order of their revocation.
func (b *Book) Records() []Record {
	out := make([]Record, 0, len(b.order)+len(b.repoOrder))
	for _, id := range b.order {
		out = append(out, *b.recs[id])
	}
	for _, id := range b.repoOrder {
		out = append(out, *b.repo[id])
	}
	return out
}

// Record returns a copy of the grant's record (a ledger grant ID or a
// revoked grant block's address).
func (b *Book) Record(id string) (Record, bool) {
	if r, ok := b.recs[id]; ok {
		return *r, true
	}
	if r, ok := b.repo[id]; ok {
		return *r, true
	}
	return Record{}, false
}

// Warnings returns what the replay found, in ledger order.
func (b *Book) Warnings() []Warning { return b.warns }

// Apply replays one ledger event: it verifies the signature, runs the
// transition the event proposes and records the outcome (a warning when
// it does not count). Events that are not part of the grant workflow are
// ignored. It returns the refusal, or nil when the event counted.
func (b *Book) Apply(ev state.Event) *Refusal {
	switch ev.Type {
	case state.EventRequest:
		return b.request(ev)
	case state.EventApprove, state.EventDeny, state.EventRevoke, state.EventReview:
		return b.decision(ev)
	}
	return nil
}

// Check answers whether a proposed event, not yet signed, would be
// accepted if it were appended now (its Time), and what the grant's state
// would become. It applies the same transition as Apply, with the rules
// that hold only when an event is written (a request must conform to the
// policy and respect max_active now; an approval's until must shorten the
// window), and without the signature check (the event is signed after).
// The Book is not changed.
func (b *Book) Check(ev state.Event) (Record, *Refusal) {
	c := b.clone()
	c.checking = true
	ref := c.Apply(ev)
	id := ""
	switch ev.Type {
	case state.EventRequest:
		if q, err := state.DecodeGrantRequest(ev); err == nil {
			id = q.ID
		}
	default:
		if d, err := state.DecodeGrantDecision(ev); err == nil {
			id = d.Grant
		}
	}
	rec, _ := c.Record(id)
	return rec, ref
}

// clone copies the Book deeply enough for Check to run a transition on it.
func (b *Book) clone() *Book {
	c := &Book{cfg: b.cfg, v: b.v, recs: make(map[string]*Record, len(b.recs)), repo: make(map[string]*Record, len(b.repo)),
		order: slices.Clone(b.order), repoOrder: slices.Clone(b.repoOrder), sigs: b.sigs, finished: b.finished}
	for id, r := range b.recs {
		c.recs[id] = r.clone()
	}
	for id, r := range b.repo {
		c.repo[id] = r.clone()
	}
	return c
}

func (r *Record) clone() *Record {
	c := *r
	c.Approvers = slices.Clone(r.Approvers)
	c.Decisions = slices.Clone(r.Decisions)
	c.Events = slices.Clone(r.Events)
	return &c
}

// Finish settles what depends on now and on the whole ledger: expiry of
// pending requests and max_active.
func (b *Book) Finish(now time.Time) {
	now = now.UTC()
	for _, id := range b.order {
		rec := b.recs[id]
		if rec.Pending && !now.Before(rec.ExpiresAt) {
			rec.Pending, rec.Expired, rec.Status = false, true, StatusExpired
		}
	}
	b.enforceMaxActive()
	b.finished = true
}

// RequestTTL is how long a request under pol waits for its approvals.
func RequestTTL(pol *config.Policy) time.Duration {
	if pol != nil && pol.RequestTTL > 0 {
		return pol.RequestTTL
	}
	return DefaultRequestTTL
}

// ApprovalsNeeded is how many distinct approvals a grant under p needs.
func ApprovalsNeeded(p *config.Policy) int { return max(p.Approvals, 1) }

func (b *Book) warn(ev state.Event, summary, detail string) {
	b.warns = append(b.warns, Warning{
		Summary: fmt.Sprintf("ledger event %d: %s", ev.Seq, summary),
		Detail:  detail,
		Subject: fmt.Sprintf("ledger seq %d", ev.Seq),
	})
}

// verify checks the event's signature and says why it does not count when
// it does not. While checking a proposed event there is no signature yet.
func (b *Book) verify(ev state.Event) error {
	if b.checking {
		return nil
	}
	err := b.v.Verify(ev)
	if prev, ok := b.sigs[ev.Sig]; ok && ev.Sig != "" && errors.Is(err, state.ErrBadSignature) {
		return fmt.Errorf("replayed signature: it was made for ledger event %d (%s of %s), and a signature covers the grant it names",
			prev.Seq, prev.Type, payloadGrant(prev))
	}
	if ev.Sig != "" {
		if _, ok := b.sigs[ev.Sig]; !ok {
			b.sigs[ev.Sig] = ev
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrUnsigned):
		return fmt.Errorf("not signed: every grant event must carry the SSH signature of actor %s", ev.Actor)
	case errors.Is(err, state.ErrWrongKey):
		return fmt.Errorf("wrong key: %v", err)
	case errors.Is(err, state.ErrBadSignature), errors.Is(err, state.ErrMalformedSignature):
		return fmt.Errorf("forged or altered: %v", err)
	}
	return err
}

func payloadGrant(ev state.Event) string {
	if ev.Type == state.EventRequest {
		if q, err := state.DecodeGrantRequest(ev); err == nil {
			return q.ID
		}
	}
	if d, err := state.DecodeGrantDecision(ev); err == nil && d.Grant != "" {
		return d.Grant
	}
	return "another grant"
}

// without returns xs minus the given names, in order, each once.
func without(xs []string, drop ...string) []string {
	var out []string
	for _, x := range xs {
		if !slices.ContainsFunc(drop, func(d string) bool { return strings.EqualFold(d, x) }) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
