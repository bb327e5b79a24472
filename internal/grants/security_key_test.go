package grants

import (
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// TestSecurityKeyRule: require_security_key, the rule alone. Each refusal
// has its own rule name; flags count only from a verified signature.
func TestSecurityKeyRule(t *testing.T) {
	t.Parallel()
	presence := &config.Policy{Addr: "policy.p", RequireSecurityKey: config.SecurityKeyPresence}
	verification := &config.Policy{Addr: "policy.v", RequireSecurityKey: config.SecurityKeyUserVerification}
	none := &config.Policy{Addr: "policy.n"}
	sk := func(keyType string, flags byte) state.SignatureInfo {
		return state.SignatureInfo{KeyType: keyType, SecurityKey: state.IsSecurityKeyType(keyType), Flags: flags}
	}
	const up, uv = state.SKFlagUserPresence, state.SKFlagUserVerification
	tests := []struct {
		name   string
		pol    *config.Policy
		info   state.SignatureInfo
		signed bool
		rule   string
	}{
		{"no requirement: an ordinary key counts", none, sk("ssh-ed25519", 0), true, ""},
		{"an ordinary ed25519 key is refused", presence, sk("ssh-ed25519", 0), true, RuleSecurityKey},
		{"an ordinary ecdsa key is refused", verification, sk("ecdsa-sha2-nistp256", 0), true, RuleSecurityKey},
		{"an ordinary key is refused before signing too", presence, sk("ssh-ed25519", 0), false, RuleSecurityKey},
		{"an unknown key is refused", presence, state.SignatureInfo{}, true, RuleSecurityKey},
		{"flags claimed for an ordinary key do not help", presence, state.SignatureInfo{KeyType: "ssh-ed25519", Flags: up | uv}, true, RuleSecurityKey},
		{"sk key without the presence flag is refused", presence, sk(state.KeyTypeSKEd25519, 0), true, RuleSKPresence},
		{"sk key with verification but no presence is refused", verification, sk(state.KeyTypeSKECDSA, uv), true, RuleSKPresence},
		{"presence counts under presence", presence, sk(state.KeyTypeSKEd25519, up), true, ""},
		{"ecdsa-sk presence counts under presence", presence, sk(state.KeyTypeSKECDSA, up), true, ""},
		{"presence without verification is refused under user_verification", verification, sk(state.KeyTypeSKEd25519, up), true, RuleSKVerification},
		{"verification counts under user_verification", verification, sk(state.KeyTypeSKECDSA, up|uv), true, ""},
		{"verification counts under presence", presence, sk(state.KeyTypeSKEd25519, up|uv), true, ""},
		{"before signing, an sk key passes (flags are judged once signed)", verification, sk(state.KeyTypeSKEd25519, 0), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := SecurityKeyRule(tc.pol, tc.info, tc.signed)
			if got := ruleOf(r); got != tc.rule {
				t.Fatalf("rule %q (%v), want %q", got, r, tc.rule)
			}
			if r != nil && (r.Reason == "" || r.Advice == "") {
				t.Fatalf("refusal without words: %+v", r)
			}
		})
	}
}

// TestCheckSignedSecurityKey: what the CLI asks after signing and before
// appending: the flags of the signature it just made.
func TestCheckSignedSecurityKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "fido_uv", "vic", "vic", at(0), nil, time.Hour, false)
	w.request(gB, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	b := w.replay(at(time.Minute))
	tests := []struct {
		name, grant, actor, typ string
		rule                    string
	}{
		{"user verified", gA, "uma", state.EventApprove, ""},
		{"presence alone", gA, "sam", state.EventApprove, RuleSKVerification},
		{"not touched", gA, "nora", state.EventApprove, RuleSKPresence},
		{"ordinary key", gA, "carol", state.EventApprove, RuleSecurityKey},
		{"a deny needs no security key", gA, "carol", state.EventDeny, ""},
		{"a policy without the requirement", gB, "carol", state.EventApprove, ""},
		{"not touched is refused under any policy", gB, "nora", state.EventApprove, RuleSKPresence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := w.decisionEvent(tc.typ, tc.grant, tc.actor, at(time.Minute), nil)
			if got := ruleOf(b.CheckSigned(ev)); got != tc.rule {
				t.Fatalf("rule %q, want %q", got, tc.rule)
			}
		})
	}
	ev := w.decisionEvent(state.EventApprove, gA, "uma", at(time.Minute), nil)
	ev.Sig = ""
	if got := ruleOf(b.CheckSigned(ev)); got != RuleSignature {
		t.Fatalf("an unsigned event: rule %q, want %q", got, RuleSignature)
	}
	if rec, _ := b.Record(gA); rec.Status != StatusPending || len(rec.Decisions) != 0 {
		t.Fatalf("CheckSigned changed the Book: %+v", rec)
	}
}

// A request is judged once signed like an approval: under a policy that
// requires a security key with user verification, a request signed with an
// ordinary key or with presence alone is refused before it is written.
func TestCheckSignedSecurityKeyOnRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := w.replay(at(0))
	tests := []struct{ actor, rule string }{
		{"vic", ""},
		{"sam", RuleSKVerification},
		{"alice", RuleSecurityKey},
	}
	for _, tc := range tests {
		ev := w.requestEvent(gC, "fido_uv", tc.actor, tc.actor, at(0), nil, time.Hour, false)
		if got := ruleOf(b.CheckSigned(ev)); got != tc.rule {
			t.Errorf("request signed by %s: rule %q, want %q", tc.actor, got, tc.rule)
		}
	}
}

// A refusal names the key type it saw, and "unknown" when it saw none.
func TestSecurityKeyRefusalNamesTheKeyType(t *testing.T) {
	t.Parallel()
	pol := &config.Policy{Addr: "policy.p", RequireSecurityKey: config.SecurityKeyPresence}
	for kt, want := range map[string]string{"": "signed with a unknown key", "ssh-ed25519": "signed with a ssh-ed25519 key"} {
		r := SecurityKeyRule(pol, state.SignatureInfo{KeyType: kt}, true)
		if r == nil || !strings.Contains(r.Reason, want) {
			t.Errorf("key type %q: refusal %+v, want its reason to say %q", kt, r, want)
		}
	}
}
