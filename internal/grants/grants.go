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
	"maps"
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

// InfoVerifier is a Verifier that also says how a signature was made (the
// key type, and a security key's flags and counter). Under a policy with
// require_security_key, a signature counts only when its verifier is an
// InfoVerifier that reports the flags the policy demands; SSHVerifier is
// one.
type InfoVerifier interface {
	Verifier
	VerifyInfo(ev state.Event) (state.SignatureInfo, error)
}

// Factors: how an event was signed, as grant show, the plan text and the
// plan JSON (approver_factors) name it.
const (
	FactorSSHKey                  = "ssh_key"                    // any declared key
	FactorSecurityKeyPresence     = "security_key_presence"      // a FIDO key, touched
	FactorSecurityKeyUserVerified = "security_key_user_verified" // touched, with a PIN or biometric
)

// FactorOf names how a verified signature was made.
func FactorOf(info state.SignatureInfo) string {
	switch {
	case info.UserVerified():
		return FactorSecurityKeyUserVerified
	case info.UserPresent():
		return FactorSecurityKeyPresence
	}
	return FactorSSHKey
}

// FactorText is a factor in words ("security key, user verified"), or ""
// for an ordinary SSH key.
func FactorText(factor string) string {
	switch factor {
	case FactorSecurityKeyUserVerified:
		return "security key, user verified"
	case FactorSecurityKeyPresence:
		return "security key, presence"
	}
	return ""
}

// SecurityKeyRule is require_security_key: under pol, a request, approval
// or review counts only when signed by a security key
// (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com), with
// the user presence flag, and under "user_verification" the user
// verification flag too. signed says whether info comes from a verified
// signature (replay) or only from the actor's declared key (the CLI's
// check before signing), when the flags are not known yet.
func SecurityKeyRule(pol *config.Policy, info state.SignatureInfo, signed bool) *Refusal {
	if pol == nil || pol.RequireSecurityKey == "" {
		return nil
	}
	switch {
	case !state.IsSecurityKeyType(info.KeyType):
		kt := info.KeyType
		if kt == "" {
			kt = "unknown"
		}
		return &Refusal{Rule: RuleSecurityKey,
			Reason: fmt.Sprintf("signed with a %s key, but %s requires a security key (require_security_key): %s or %s",
				kt, pol.Addr, state.KeyTypeSKEd25519, state.KeyTypeSKECDSA),
			Advice: fmt.Sprintf("%s requires a security key (require_security_key), and the declared ssh_key is a %s key: "+
				"declare a FIDO key (ssh-keygen -t ed25519-sk) as the actor's ssh_key and sign with it", pol.Addr, kt)}
	case !signed:
		return nil
	case !info.UserPresent():
		return &Refusal{Rule: RuleSKPresence,
			Reason: fmt.Sprintf("the security-key signature does not assert user presence (flags 0x%02x): %s requires the key to be touched", info.Flags, pol.Addr),
			Advice: fmt.Sprintf("%s requires the security key to be touched when signing; the key is set to no-touch-required", pol.Addr)}
	case pol.RequireSecurityKey == config.SecurityKeyUserVerification && !info.UserVerified():
		return &Refusal{Rule: RuleSKVerification,
			Reason: fmt.Sprintf("the security-key signature asserts presence but not user verification (flags 0x%02x): %s requires a PIN or biometric (require_security_key = %q)",
				info.Flags, pol.Addr, config.SecurityKeyUserVerification),
			Advice: fmt.Sprintf("%s requires user verification: make the key with ssh-keygen -t ed25519-sk -O verify-required, so that signing asks for its PIN", pol.Addr)}
	}
	return nil
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
	Approvers []string
	// ApproverFactors: how each approver in Approvers signed (FactorOf),
	// for the approvals signed with a security key; absent: an ordinary
	// SSH key.
	ApproverFactors map[string]string
	// RequestFactor: how the request was signed (FactorOf).
	RequestFactor string
	Revoked       bool
	RevokedAt     time.Time
	BreakGlass    bool
	Unreviewed    bool // break-glass grant not yet reviewed
	Pending       bool // requested, not yet approved
	Denied        bool
	Expired       bool   // pending request past the policy's request_ttl
	Subject       string // "ledger seq N" of the request, for warnings

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
	// Factor: how it was signed (FactorOf), when the signature verified.
	Factor string
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
	RuleSecurityKey        = "security-key"
	RuleSKPresence         = "security-key-presence"
	RuleSKVerification     = "security-key-user-verification"
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
	// cur: how the event being applied was signed (while checking: the
	// actor's declared key, flags unknown).
	cur state.SignatureInfo
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
	c.ApproverFactors = maps.Clone(r.ApproverFactors)
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
// it does not; b.cur is then how it was signed. While checking a proposed
// event there is no signature yet: b.cur is the actor's declared key.
func (b *Book) verify(ev state.Event) *Refusal {
	b.cur = state.SignatureInfo{}
	if b.checking {
		if a := b.cfg.ActorByName(ev.Actor); a != nil {
			if pub, err := state.ParsePublicKey(a.SSHKey); err == nil {
				b.cur = state.SignatureInfo{KeyType: pub.Type(), SecurityKey: state.IsSecurityKeyType(pub.Type())}
			}
		}
		return nil
	}
	var err error
	if iv, ok := b.v.(InfoVerifier); ok {
		b.cur, err = iv.VerifyInfo(ev)
	} else {
		err = b.v.Verify(ev)
	}
	if prev, ok := b.sigs[ev.Sig]; ok && ev.Sig != "" && errors.Is(err, state.ErrBadSignature) {
		return &Refusal{Rule: RuleSignature, Reason: fmt.Sprintf("replayed signature: it was made for ledger event %d (%s of %s), and a signature covers the grant it names",
			prev.Seq, prev.Type, payloadGrant(prev))}
	}
	if ev.Sig != "" {
		if _, ok := b.sigs[ev.Sig]; !ok {
			b.sigs[ev.Sig] = ev
		}
	}
	var why string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrNoUserPresence):
		// Never counts, under any policy: the key was not touched.
		return &Refusal{Rule: RuleSKPresence, Reason: fmt.Sprintf("the security-key signature does not assert user presence (flags 0x%02x): the key was not touched", b.cur.Flags)}
	case errors.Is(err, state.ErrUnsigned):
		why = fmt.Sprintf("not signed: every grant event must carry the SSH signature of actor %s", ev.Actor)
	case errors.Is(err, state.ErrWrongKey):
		why = fmt.Sprintf("wrong key: %v", err)
	case errors.Is(err, state.ErrBadSignature), errors.Is(err, state.ErrMalformedSignature):
		why = fmt.Sprintf("forged or altered: %v", err)
	default:
		why = err.Error()
	}
	b.cur = state.SignatureInfo{}
	return &Refusal{Rule: RuleSignature, Reason: why}
}

// securityKey applies require_security_key to the event being applied.
func (b *Book) securityKey(pol *config.Policy) *Refusal {
	return SecurityKeyRule(pol, b.cur, !b.checking)
}

// CheckSigned judges a proposed event once it is signed, before it is
// appended: its signature must verify, and under a policy with
// require_security_key carry the flags the policy demands (which Check,
// before signing, cannot see). The Book is not changed.
func (b *Book) CheckSigned(ev state.Event) *Refusal {
	// A Book of its own: verify records signatures it has seen.
	c := &Book{cfg: b.cfg, v: b.v, sigs: map[string]state.Event{}}
	if r := c.verify(ev); r != nil {
		return r
	}
	var pol *config.Policy
	switch ev.Type {
	case state.EventRequest:
		if q, err := state.DecodeGrantRequest(ev); err == nil {
			pol = b.cfg.PolicyByAddr(q.Policy)
		}
	case state.EventApprove, state.EventReview:
		if d, err := state.DecodeGrantDecision(ev); err == nil {
			if rec := b.recs[d.Grant]; rec != nil {
				pol = b.cfg.PolicyByAddr(rec.Policy)
			}
		}
	}
	return SecurityKeyRule(pol, c.cur, true)
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
