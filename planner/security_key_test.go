package planner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants/sktest"
	"github.com/jitform/jitform/state"
)

// TestPlanNamesSecurityKeyFactor: under require_security_key the plan's
// add line names how each approval was signed ("approved by uma (security
// key, user verified)"), the plan JSON carries approver_factors, and an
// approval signed with an ordinary key grants nothing.
func TestPlanNamesSecurityKeyFactor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		mode     string
		approver string
		flags    byte
		grants   bool
		text     string // in the add line
		factor   string // approver_factors[approver]
	}{
		{name: "user verified", mode: config.SecurityKeyUserVerification, approver: "uma",
			flags: sktest.FlagUserPresence | sktest.FlagUserVerification, grants: true,
			text: "approved by uma (security key, user verified)", factor: "security_key_user_verified"},
		{name: "presence", mode: config.SecurityKeyPresence, approver: "uma",
			flags: sktest.FlagUserPresence, grants: true,
			text: "approved by uma (security key, presence)", factor: "security_key_presence"},
		{name: "presence is not enough under user_verification", mode: config.SecurityKeyUserVerification, approver: "uma",
			flags: sktest.FlagUserPresence, grants: false},
		{name: "an ordinary key approves nothing", mode: config.SecurityKeyPresence, approver: "carol", grants: false},
		{name: "no requirement: a security key is still named", mode: "", approver: "uma",
			flags: sktest.FlagUserPresence, grants: true,
			text: "approved by uma (security key, presence)", factor: "security_key_presence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newLedgerWorld(t)
			for _, k := range []struct {
				name  string
				flags byte
			}{{"uma", tc.flags}, {"sam", sktest.FlagUserPresence | sktest.FlagUserVerification}} {
				s := sktest.MustNew(sktest.TypeECDSA, k.flags)
				w.keys[k.name] = s
				w.cfg.Actors = append(w.cfg.Actors, &config.Actor{Name: k.name, SSHKey: s.AuthorizedKey()})
			}
			pol := *w.cfg.PolicyByAddr("policy.ops")
			pol.Name, pol.Addr = "fido", "policy.fido"
			pol.RequireSecurityKey = tc.mode
			pol.Eligible = []string{"sam", "svc-deploy"}
			pol.Approvers = []string{"carol", "uma"}
			w.cfg.Policies = append(w.cfg.Policies, &pol)

			events := []state.Event{w.request(gA, "fido", "svc-deploy", "sam", at(0), nil, time.Hour, false)}
			events = append(events, w.decide(state.EventApprove, gA, tc.approver, at(time.Minute), nil))
			ok, reason, plan := grantsAccess(t, w.cfg, events, at(2*time.Minute), gA)
			if ok != tc.grants {
				t.Fatalf("grants access = %v, want %v; warnings:\n%s", ok, tc.grants, warningsText(plan.Warnings))
			}
			if !tc.grants {
				return
			}
			var text bytes.Buffer
			if err := RenderText(&text, plan, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), tc.text) {
				t.Fatalf("plan text does not say %q:\n%s", tc.text, text.String())
			}
			raw, err := json.Marshal(reason)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Factors map[string]string `json:"approver_factors"`
			}
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			if back.Factors[tc.approver] != tc.factor || len(back.Factors) != 1 {
				t.Fatalf("approver_factors = %v, want %s: %s", back.Factors, tc.factor, raw)
			}
		})
	}
}
