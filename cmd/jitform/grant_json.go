package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
)

// grantJSONVersion is the version of grant list/show JSON (docs/grants.md).
// Fields are only ever added within a major version.
const grantJSONVersion = "1.0"

// grantListJSON is `grant list --json`.
type grantListJSON struct {
	FormatVersion string            `json:"format_version"`
	At            time.Time         `json:"at"`
	Grants        []grantJSON       `json:"grants"`
	Warnings      []planner.Warning `json:"warnings,omitempty"`
}

// grantJSON is one grant in `grant list --json` and `grant show --json`.
type grantJSON struct {
	ID     string `json:"id"`     // g-xxxxxxxxxx, or grant.NAME for a grant block
	Source string `json:"source"` // "ledger" or "repository"
	// Status: pending, approved, denied, expired, revoked, refused, invalid.
	Status string `json:"status"`
	// Active: the grant counts and its window contains the listing time.
	Active          bool       `json:"active"`
	Policy          string     `json:"policy"`
	Principal       string     `json:"principal"`
	Ticket          string     `json:"ticket,omitempty"`
	Reason          string     `json:"reason,omitempty"`
	RequestedBy     string     `json:"requested_by,omitempty"`
	RequestedAt     *time.Time `json:"requested_at,omitempty"`
	RequestHash     string     `json:"request_hash,omitempty"` // ledger hash of the request, which every decision signs
	Duration        string     `json:"duration"`
	Start           *time.Time `json:"start"` // null until approved when the window starts at approval
	End             *time.Time `json:"end"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"` // pending requests
	ApprovalsNeeded int        `json:"approvals_needed"`
	Approvers       []string   `json:"approvers"` // verified, distinct
	// ApproverFactors: approver -> how their approval was signed, for
	// approvals signed with a security key ("security_key_presence",
	// "security_key_user_verified").
	ApproverFactors map[string]string `json:"approver_factors,omitempty"`
	// RequestFactor: how the request was signed ("ssh_key",
	// "security_key_presence", "security_key_user_verified").
	RequestFactor string         `json:"request_factor,omitempty"`
	BreakGlass    bool           `json:"break_glass"`
	Unreviewed    bool           `json:"unreviewed"`
	ReviewedBy    string         `json:"reviewed_by,omitempty"`
	ReviewedAt    *time.Time     `json:"reviewed_at,omitempty"`
	DeniedBy      string         `json:"denied_by,omitempty"`
	DenyReason    string         `json:"deny_reason,omitempty"`
	RevokedAt     *time.Time     `json:"revoked_at,omitempty"`
	RevokedBy     string         `json:"revoked_by,omitempty"`
	RevokeReason  string         `json:"revoke_reason,omitempty"`
	Refusal       string         `json:"refusal,omitempty"` // why it does not count
	Decisions     []decisionJSON `json:"decisions"`
}

type decisionJSON struct {
	Seq     int64      `json:"seq"`
	Type    string     `json:"type"`
	Actor   string     `json:"actor"`
	At      time.Time  `json:"at"`
	Until   *time.Time `json:"until,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Counted bool       `json:"counted"`
	Why     string     `json:"why,omitempty"`
	// Factor: how it was signed, when the signature verified ("ssh_key",
	// "security_key_presence", "security_key_user_verified").
	Factor string `json:"factor,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func grantToJSON(cfg *config.Config, rec *planner.GrantRecord, now time.Time) grantJSON {
	g := grantJSON{
		ID: rec.ID, Source: rec.Source, Status: rec.Status, Policy: rec.Policy, Principal: rec.Principal,
		Ticket: rec.Ticket, Reason: rec.Reason, RequestedBy: rec.RequestedBy, RequestedAt: timePtr(rec.RequestedAt), RequestHash: rec.RequestHash,
		Start: timePtr(rec.Start), End: timePtr(rec.End),
		Approvers: rec.Approvers, ApproverFactors: rec.ApproverFactors, RequestFactor: rec.RequestFactor,
		BreakGlass: rec.BreakGlass, Unreviewed: rec.Unreviewed,
		ReviewedBy: rec.ReviewedBy, ReviewedAt: timePtr(rec.ReviewedAt),
		DeniedBy: rec.DeniedBy, DenyReason: rec.DenyReason,
		RevokedBy: rec.RevokedBy, RevokeReason: rec.RevokeReason, Refusal: rec.Refusal,
		Decisions: []decisionJSON{},
	}
	if rec.Duration > 0 {
		g.Duration = rec.Duration.String()
	} else if !rec.Start.IsZero() {
		g.Duration = rec.End.Sub(rec.Start).String()
	}
	if rec.Revoked {
		g.RevokedAt = timePtr(rec.RevokedAt)
	}
	if rec.Status == planner.StatusPending {
		g.ExpiresAt = timePtr(rec.ExpiresAt)
	}
	if pol := cfg.PolicyByAddr(rec.Policy); pol != nil {
		g.ApprovalsNeeded = approvalsNeeded(pol)
		if rec.BreakGlass {
			g.ApprovalsNeeded = 0
		}
	}
	if g.Approvers == nil {
		g.Approvers = []string{}
	}
	for _, d := range rec.Decisions {
		g.Decisions = append(g.Decisions, decisionJSON{Seq: d.Seq, Type: d.Type, Actor: d.Actor, At: d.At.UTC(),
			Until: d.Until, Reason: d.Reason, Counted: d.Counted, Why: d.Why, Factor: d.Factor})
	}
	g.Active = rec.Status == planner.StatusApproved && !rec.Start.After(now) && rec.End.After(now)
	return g
}

// allGrants lists the ledger's grants and the repository's grant blocks,
// newest first, with the ledger's warnings about grant events.
func allGrants(env *grantEnv) ([]grantJSON, []planner.Warning) {
	recs, warns := planner.LedgerGrants(env.cfg, env.events, env.now)
	var out []grantJSON
	revokedRepo := map[string]*planner.GrantRecord{}
	for i := range recs {
		if recs[i].Source == "repository" {
			revokedRepo[recs[i].ID] = &recs[i]
			continue
		}
		out = append(out, grantToJSON(env.cfg, &recs[i], env.now))
	}
	for _, cg := range env.cfg.Grants {
		rec := &planner.GrantRecord{
			Grant: planner.Grant{ID: cg.Addr, Source: "repository", Policy: cg.Policy, Principal: cg.Principal,
				Start: cg.Start, End: cg.End(), Ticket: cg.Ticket, Reason: cg.Reason, Approvers: cg.ApprovedBy},
			Status: planner.StatusApproved, Duration: cg.Duration,
		}
		if r := revokedRepo[cg.Addr]; r != nil {
			rec.Revoked, rec.RevokedAt, rec.RevokedBy, rec.RevokeReason = true, r.RevokedAt, r.RevokedBy, r.RevokeReason
			rec.Status, rec.Decisions = planner.StatusRevoked, r.Decisions
		}
		out = append(out, grantToJSON(env.cfg, rec, env.now))
	}
	sort.SliceStable(out, func(i, j int) bool { return sortTime(out[i]).After(sortTime(out[j])) })
	return out, warns
}

// sortTime orders grants newest first: by request, else by window start.
func sortTime(g grantJSON) time.Time {
	if g.RequestedAt != nil {
		return *g.RequestedAt
	}
	if g.Start != nil {
		return *g.Start
	}
	return time.Time{}
}

func (a *app) writeJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return a.errorf("encode JSON: %v", err)
	}
	fmt.Fprintf(a.stdout, "%s\n", b)
	return exitOK
}

// approversWithFactors names each approver and, for an approval signed with
// a security key, how: "carol (security key, user verified), dave".
func approversWithFactors(g grantJSON, sep string) string {
	parts := make([]string, len(g.Approvers))
	for i, a := range g.Approvers {
		parts[i] = a
		if f := grants.FactorText(g.ApproverFactors[a]); f != "" {
			parts[i] += " (" + f + ")"
		}
	}
	return strings.Join(parts, sep)
}
