package planner

import (
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/state"
)

// The grant workflow's rules live in internal/grants, one state machine
// shared by the CLI (before it writes an event) and the planner (for every
// event in the ledger). This file adapts its records to the planner's Grant.

// DefaultRequestTTL is how long a request waits for its approvals when the
// policy does not set request_ttl.
const DefaultRequestTTL = grants.DefaultRequestTTL

// Grant record statuses, as `grant list` prints them.
const (
	StatusPending  = grants.StatusPending  // waiting for approvals
	StatusApproved = grants.StatusApproved // approved; its window may be ahead, open or over (see Start/End)
	StatusDenied   = grants.StatusDenied
	StatusExpired  = grants.StatusExpired // not approved within request_ttl
	StatusRevoked  = grants.StatusRevoked // ended early
	StatusRefused  = grants.StatusRefused // does not count: see Refusal
	StatusInvalid  = grants.StatusInvalid // the request itself does not count (bad signature, unknown policy ...)
)

// GrantRecord is everything the ledger says about one ledger grant: the
// request, each decision and whether it counted. The planner uses the Grant
// part; `grant list` and `grant show` print the rest.
type GrantRecord struct {
	Grant
	Status      string
	RequestedBy string
	RequestedAt time.Time
	// RequestHash is the ledger hash of the request event, which every
	// decision on the grant signs (state.GrantDecision.Request).
	RequestHash string
	// RequestFactor: how the request was signed (grants.FactorOf).
	RequestFactor string
	Duration      time.Duration // as requested
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
	// Refusal says why an approved-looking grant does not count
	// (Status refused or invalid).
	Refusal string
	// Events are the ledger sequence numbers of the grant's events.
	Events []int64
}

// Decision is one signed event about a grant and whether it counted.
type Decision = grants.Decision

// LedgerGrants is ledgerGrants with the full records, for the grant
// commands. It is pure, like the rest of the planner.
func LedgerGrants(cfg *config.Config, events []state.Event, now time.Time) ([]GrantRecord, []Warning) {
	return LedgerGrantsMemo(cfg, events, now, nil)
}

// LedgerGrantsMemo is LedgerGrants with signatures that memo (nil: none)
// holds taken as verified (grants.Memo). The memo is data handed in by the
// caller, which alone decides where it lives and why it is trusted.
func LedgerGrantsMemo(cfg *config.Config, events []state.Event, now time.Time, memo grants.Memo) ([]GrantRecord, []Warning) {
	book := grants.Replay(cfg, grants.NewSSHVerifierMemo(cfg, events, memo), events, now)
	recs := book.Records()
	out := make([]GrantRecord, len(recs))
	for i, r := range recs {
		out[i] = FromRecord(r)
	}
	return out, FromWarnings(book.Warnings())
}

// FromRecord converts a grants.Record into the planner's GrantRecord.
func FromRecord(r grants.Record) GrantRecord {
	return GrantRecord{
		Grant: Grant{
			ID: r.ID, Source: r.Source, Policy: r.Policy, Principal: r.Principal,
			Start: r.Start, End: r.End, Ticket: r.Ticket, Reason: r.Reason, Approvers: r.Approvers, ApproverFactors: r.ApproverFactors,
			Revoked: r.Revoked, RevokedAt: r.RevokedAt, BreakGlass: r.BreakGlass, Unreviewed: r.Unreviewed,
			Pending: r.Pending, Denied: r.Denied, Expired: r.Expired, Subject: r.Subject,
		},
		Status: r.Status, RequestedBy: r.RequestedBy, RequestedAt: r.RequestedAt, RequestHash: r.RequestHash, RequestFactor: r.RequestFactor,
		Duration: r.Duration, StartAtApproval: r.StartAtApproval, ExpiresAt: r.ExpiresAt, ApprovedAt: r.ApprovedAt,
		Decisions: r.Decisions, DeniedBy: r.DeniedBy, DenyReason: r.DenyReason,
		RevokedBy: r.RevokedBy, RevokeReason: r.RevokeReason, ReviewedBy: r.ReviewedBy, ReviewedAt: r.ReviewedAt,
		PolicyGone: r.PolicyGone, Refusal: r.Refusal, Events: r.Events,
	}
}

// FromWarnings converts the grant workflow's warnings into plan warnings.
func FromWarnings(ws []grants.Warning) []Warning {
	out := make([]Warning, len(ws))
	for i, w := range ws {
		out[i] = Warning{Summary: w.Summary, Detail: w.Detail, Subject: w.Subject}
	}
	return out
}

// ledgerGrants derives the grants requested and decided in the ledger,
// counting only approvals whose signatures verify against a declared
// approver's key. Revocations of repository grants come back as entries with
// Source "repository" and Revoked set (see Replay).
func ledgerGrants(cfg *config.Config, events []state.Event, now time.Time, memo grants.Memo) ([]Grant, []Warning) {
	recs, warns := LedgerGrantsMemo(cfg, events, now, memo)
	var out []Grant
	for _, rec := range recs {
		g := rec.Grant
		switch {
		case rec.PolicyGone && !rec.ApprovedAt.IsZero():
			// Compute reports that its policy is gone.
		case rec.Status == StatusInvalid:
			continue // nothing counts of it, and the warning says why
		case rec.Source == "ledger" && rec.Revoked && rec.ApprovedAt.IsZero():
			// A request withdrawn before approval granted nothing: inert.
			g.Denied = true
		}
		out = append(out, g)
	}
	return out, warns
}

// RequestTTLOf is how long a request under pol waits for its approvals.
func RequestTTLOf(pol *config.Policy) time.Duration { return grants.RequestTTL(pol) }
