package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// GrantRequest is the payload of a request event: someone asks for a
// principal to hold a policy's groups for a while. Requests are signed by
// their actor; the planner decides whether they count.
type GrantRequest struct {
	ID        string `json:"id"`     // grant ID (NewGrantID), unique in the ledger
	Policy    string `json:"policy"` // policy address: policy.NAME
	Principal string `json:"principal"`
	// Start is when the window opens; nil: at the approval that completes
	// the policy's approvals (break-glass: at the request).
	Start *time.Time `json:"start,omitempty"`
	// Duration is the window's length in Go syntax ("2h0m0s"), as
	// time.Duration.String writes it.
	Duration   string `json:"duration"`
	Ticket     string `json:"ticket,omitempty"`
	Reason     string `json:"reason"`
	BreakGlass bool   `json:"break_glass,omitempty"`
}

// DurationValue parses Duration.
func (r GrantRequest) DurationValue() (time.Duration, error) {
	d, err := time.ParseDuration(r.Duration)
	if err != nil {
		return 0, fmt.Errorf("grant %s: duration %q: %w", r.ID, r.Duration, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("grant %s: duration %q is not positive", r.ID, r.Duration)
	}
	return d, nil
}

// GrantDecision is the payload of approve, deny, revoke and review events.
// Grant names the grant decided on: a ledger grant ID, or (revoke only) a
// repository grant address such as grant.alice_chg1042. Because the signed
// bytes include the payload, a decision's signature covers the grant ID and
// cannot be replayed onto another grant, and it covers Request (or Block),
// so it commits to the exact request (or grant block) it acts on: replacing
// the request under the same ID, even with the chain re-hashed, leaves
// every decision on it naming a request that is no longer there.
type GrantDecision struct {
	Grant string `json:"grant"`
	// Request is the ledger hash (Event.Hash) of the request event of the
	// ledger grant decided on.
	Request string `json:"request,omitempty"`
	// Block (revoke of a grant block only) is GrantBlockDigest of the block
	// revoked: its policy, principal, start and duration.
	Block string `json:"block,omitempty"`
	// Until (approve only) shortens the window to end at this instant; an
	// approver may shorten a window, never lengthen it.
	Until  *time.Time `json:"until,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// GrantBlockDigest is the digest that binds a revocation to a grant block's
// content: "sha256:" and the hex SHA-256 of the canonical JSON object
// {"duration","policy","principal","start"} (duration in Go syntax, start
// RFC 3339 UTC). A block edited to another principal, policy, start or
// duration is another grant, which the revocation does not end.
func GrantBlockDigest(policy, principal string, start time.Time, duration time.Duration) string {
	raw, _ := json.Marshal(map[string]string{
		"policy": policy, "principal": principal,
		"start": start.UTC().Format(time.RFC3339Nano), "duration": duration.String(),
	})
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Grant IDs are "g-" and 10 base32 characters: 50 random bits, short enough
// to type and too many to guess or collide in any real ledger.
const grantIDPrefix = "g-"

var grantIDRE = regexp.MustCompile(`^g-[a-z2-7]{10}$`)

var grantIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewGrantID returns a fresh random grant ID such as "g-k3x9q2m7ab".
func NewGrantID() (string, error) {
	var b [7]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a grant ID: %w", err)
	}
	return grantIDPrefix + strings.ToLower(grantIDEncoding.EncodeToString(b[:]))[:10], nil
}

// IsGrantID reports whether s has the shape of a ledger grant ID.
func IsGrantID(s string) bool { return grantIDRE.MatchString(s) }

// NewSignedEvent builds an unsigned event of the given type with the payload
// in canonical JSON, ready for SignEvent and Backend.Append. The time is in
// UTC and whole seconds, so that the signed bytes and the stored line agree
// however precisely a backend writes times.
func NewSignedEvent(typ, actor string, at time.Time, payload any) (Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	canon, err := CanonicalJSON(raw)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return Event{Time: at.UTC().Truncate(time.Second), Type: typ, Actor: actor, Payload: canon}, nil
}

// DecodeGrantRequest decodes a request event's payload.
func DecodeGrantRequest(ev Event) (GrantRequest, error) {
	var r GrantRequest
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return r, fmt.Errorf("decode request payload: %w", err)
	}
	return r, nil
}

// DecodeGrantDecision decodes an approve, deny, revoke or review payload.
func DecodeGrantDecision(ev Event) (GrantDecision, error) {
	var d GrantDecision
	if err := json.Unmarshal(ev.Payload, &d); err != nil {
		return d, fmt.Errorf("decode %s payload: %w", ev.Type, err)
	}
	return d, nil
}

// IsGrantEvent reports whether an event belongs to the grant workflow.
func IsGrantEvent(typ string) bool {
	switch typ {
	case EventRequest, EventApprove, EventDeny, EventRevoke, EventReview:
		return true
	}
	return false
}
