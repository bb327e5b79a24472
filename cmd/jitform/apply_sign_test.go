package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitform/jitform/state"
)

func ledgerEvents(t *testing.T, dir string) []state.Event {
	t.Helper()
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// apply --as with a key that is not the actor's, or an actor that is not
// declared, is refused before anything is read, written or changed.
func TestApplyAsRefusesABadKeyOrUnknownActorBeforeAnyChange(t *testing.T) {
	r := newGrantRepo(t)
	ldif := filepath.Join(r.dir, "directory.ldif")
	before, _ := os.ReadFile(ldif)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"someone else's key", []string{"apply", "--auto-approve", "--as", "carol", "--key", r.keys["dave"]}, "is not the ssh_key declared for this actor"},
		{"unknown actor", []string{"apply", "--auto-approve", "--as", "mallory", "--key", r.keys["dave"]}, `"mallory" is not a declared actor`},
		{"key without actor", []string{"apply", "--auto-approve", "--key", r.keys["carol"]}, "add --as NAME"},
		{"no agent", []string{"apply", "--auto-approve", "--as", "carol"}, "SSH_AUTH_SOCK is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := r.run(tc.args...)
			if code != exitError || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %q", code, stderr, tc.want)
			}
			if !strings.Contains(stderr, "nothing was changed") {
				t.Errorf("stderr %q does not say nothing was changed", stderr)
			}
			if evs := ledgerEvents(t, r.dir); len(evs) != 0 {
				t.Errorf("refused apply wrote %d ledger event(s)", len(evs))
			}
			if after, _ := os.ReadFile(ldif); string(after) != string(before) {
				t.Errorf("refused apply changed the directory")
			}
		})
	}
}

// apply --as signs the plan: apply_signed by the actor, over the plan id
// and digest, is in the ledger before the first intent; ledger verify
// checks it against the declared key and fails once the key no longer
// matches.
func TestApplyAsSignsThePlanBeforeTheIntents(t *testing.T) {
	r := newGrantRepo(t)
	withPerson(t, r.dir, "alice")
	r.env["GITHUB_ACTIONS"] = "true"
	r.env["GITHUB_ACTOR"] = "octo\"cat\nx"
	r.env["GITHUB_REPOSITORY"] = "acme/policy"
	r.env["GITHUB_RUN_ID"] = "4242"
	r.env["GITHUB_SERVER_URL"] = "https://github.com"
	out, stderr, code := r.run("apply", "--auto-approve", "--as", "carol", "--key", r.keys["carol"])
	if code != exitOK {
		t.Fatalf("apply --as: exit %d\n%s\n%s", code, out, stderr)
	}
	evs := ledgerEvents(t, r.dir)
	if len(evs) < 4 || evs[0].Type != state.EventApplyStarted || evs[1].Type != state.EventApplySigned || evs[2].Type != state.EventChangeIntent {
		types := []string{}
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		t.Fatalf("ledger types %v; want apply_started, apply_signed, change_intent, ...", types)
	}
	var st state.ApplyStarted
	if err := json.Unmarshal(evs[0].Payload, &st); err != nil {
		t.Fatal(err)
	}
	if st.Runner.CI == nil || st.Runner.CI.Actor != "octo\"cat\nx" || st.Runner.CI.URL != "https://github.com/acme/policy/actions/runs/4242" {
		t.Errorf("runner = %+v, want the GitHub job recorded verbatim", st.Runner.CI)
	}
	var sg state.ApplySigned
	if err := json.Unmarshal(evs[1].Payload, &sg); err != nil {
		t.Fatal(err)
	}
	if evs[1].Actor != "carol" || evs[1].Sig == "" || sg.Run != st.ID || sg.PlanID != st.PlanID || len(sg.PlanDigest) != 64 {
		t.Errorf("apply_signed = actor %q, %+v; want carol's signature over run %s, plan %s and a sha256 digest", evs[1].Actor, sg, st.ID, st.PlanID)
	}
	// ledger log names the runner and the signer.
	out, _, code = r.run("ledger", "log")
	for _, want := range []string{
		"apply_started   jitform      apply by ",
		`via github ("octo\"cat\nx", acme/policy, run 4242) [run ` + st.ID, // one line, the value quoted
		"apply_signed    carol        plan " + st.PlanID + " (sha256 " + sg.PlanDigest[:12] + ") signed by carol by ",
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("ledger log lacks %q:\n%s", want, out)
		}
	}
	out, stderr, code = r.run("ledger", "verify")
	if code != exitOK || !strings.Contains(stderr, "1 signed apply(s) verified") {
		t.Fatalf("ledger verify: exit %d\n%s\n%s", code, out, stderr)
	}
	// Declare another key for carol: her recorded signature no longer verifies.
	main := filepath.Join(r.dir, "main.hcl")
	hcl, _ := os.ReadFile(main)
	carol, dave := actorKeyLine(t, string(hcl), "carol"), actorKeyLine(t, string(hcl), "dave")
	if err := os.WriteFile(main, []byte(strings.Replace(string(hcl), carol, dave, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = r.run("ledger", "verify")
	if code != exitError || !strings.Contains(stderr, "a signed apply does not verify") || !strings.Contains(stderr, "by carol") {
		t.Fatalf("ledger verify with carol's key replaced: exit %d, %q; want a failure naming carol's apply_signed", code, stderr)
	}
}

// withPerson adds a person entry to the repository's directory.ldif.
func withPerson(t *testing.T, dir, uid string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "directory.ldif"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\ndn: uid=" + uid + ",ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: " + uid + "\ncn: " + uid + "\nsn: " + uid + "\n"); err != nil {
		t.Fatal(err)
	}
}

// actorKeyLine is the ssh_key line of actor name in hcl.
func actorKeyLine(t *testing.T, hcl, name string) string {
	t.Helper()
	i := strings.Index(hcl, "actor \""+name+"\"")
	if i < 0 {
		t.Fatalf("no actor %s", name)
	}
	rest := hcl[i:]
	j := strings.Index(rest, "ssh_key")
	k := strings.Index(rest[j:], "\n")
	return rest[j : j+k]
}
