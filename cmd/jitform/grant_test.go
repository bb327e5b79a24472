package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/jitform/jitform/state"
)

// grantRepo is a policy repository in a temp dir with one ed25519 key per
// person (generated here; test-only keys), for driving `jitform grant`.
type grantRepo struct {
	t    *testing.T
	dir  string
	keys map[string]string // actor -> private key file
	priv map[string]ed25519.PrivateKey
	env  map[string]string
}

var grantPeople = []string{"alice", "bob", "carol", "dave", "erin"}

func newGrantRepo(t *testing.T) *grantRepo {
	t.Helper()
	r := &grantRepo{t: t, dir: t.TempDir(), keys: map[string]string{}, priv: map[string]ed25519.PrivateKey{}, env: map[string]string{}}
	keyDir := t.TempDir()
	var actors strings.Builder
	for _, name := range grantPeople {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, name+"@test")
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(keyDir, name)
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		r.keys[name], r.priv[name] = file, priv
		pub, _ := ssh.NewPublicKey(priv.Public())
		actors.WriteString("actor \"" + name + "\" {\n  ssh_key = \"" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + "\"\n}\n\n")
	}
	hcl := `
target "ldif" "corp" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "ops" {
  target = target.ldif.corp
  dn     = "cn=ops,ou=groups,dc=example,dc=org"
}

policy "ops" {
  groups         = [group.ops]
  eligible       = ["alice", "bob", "svc-deploy"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
  approval       = "ledger"
  max_active     = 1
}

policy "two" {
  groups    = [group.ops]
  eligible  = ["alice"]
  max_duration = "4h"
  approvals = 2
  approvers = ["carol", "dave"]
  approval  = "ledger"
}

policy "bg" {
  groups       = [group.ops]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
  break_glass {
    max_duration = "1h"
  }
}

policy "repo" {
  groups       = [group.ops]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
}

grant "alice_repo" {
  policy      = policy.repo
  principal   = "alice"
  start       = "` + time.Now().UTC().Add(-time.Hour).Format(time.RFC3339) + `"
  duration    = "3h"
  reason      = "declared"
  approved_by = ["carol"]
}

` + actors.String()
	if err := os.WriteFile(filepath.Join(r.dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	ldif := "dn: cn=ops,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: ops\nmember: uid=admin,ou=people,dc=example,dc=org\n"
	if err := os.WriteFile(filepath.Join(r.dir, "directory.ldif"), []byte(ldif), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs jitform -C dir args... with no terminal and returns stdout,
// stderr and the exit code.
func (r *grantRepo) run(args ...string) (string, string, int) {
	r.t.Helper()
	var out, errb bytes.Buffer
	a := &app{
		stdin:  strings.NewReader(""),
		stdout: &out, stderr: &errb,
		getenv: func(k string) string { return r.env[k] },
	}
	code := a.main(context.Background(), append([]string{"-C", r.dir}, args...))
	return out.String(), errb.String(), code
}

// as runs a grant command signed as name with name's key file.
func (r *grantRepo) as(name string, args ...string) (string, string, int) {
	r.t.Helper()
	return r.run(append(args, "--as", name, "--key", r.keys[name])...)
}

func (r *grantRepo) mustOK(stdout, stderr string, code int) string {
	r.t.Helper()
	if code != 0 {
		r.t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	return stdout
}

func (r *grantRepo) request(name string, args ...string) string {
	r.t.Helper()
	out := r.mustOK(r.as(name, append([]string{"grant", "request"}, args...)...))
	id := strings.TrimSpace(out)
	if !state.IsGrantID(id) {
		r.t.Fatalf("grant request printed %q, not a grant ID", out)
	}
	return id
}

func (r *grantRepo) list(args ...string) grantListJSON {
	r.t.Helper()
	out := r.mustOK(r.run(append([]string{"grant", "list", "--json"}, args...)...))
	var doc grantListJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		r.t.Fatalf("grant list --json: %v\n%s", err, out)
	}
	return doc
}

func (r *grantRepo) show(id string) grantJSON {
	r.t.Helper()
	out := r.mustOK(r.run("grant", "show", id, "--json"))
	var g grantJSON
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		r.t.Fatalf("grant show --json: %v\n%s", err, out)
	}
	return g
}

func TestGrantWorkflow(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	id := r.request("alice", "--policy", "ops", "--duration", "2h", "--ticket", "CHG1042", "--reason", "patch IIS")

	if got := r.list("--pending").Grants; len(got) != 1 || got[0].ID != id || got[0].Status != "pending" || got[0].Start != nil {
		t.Fatalf("pending list = %+v", got)
	}
	if got := r.list("--active").Grants; len(got) != 1 || got[0].ID != "grant.alice_repo" {
		t.Fatalf("before approval, only the repository grant is active: %+v", got)
	}

	out := r.mustOK(r.as("carol", "grant", "approve", id))
	if !strings.Contains(out, "Approved "+id+" (by carol)") {
		t.Fatalf("approve output: %s", out)
	}
	g := r.show(id)
	if g.Status != "approved" || !g.Active || len(g.Approvers) != 1 || g.Approvers[0] != "carol" {
		t.Fatalf("after approval: %+v", g)
	}
	if g.Start == nil || g.End == nil || g.End.Sub(*g.Start) != 2*time.Hour || time.Since(*g.Start) > time.Minute {
		t.Fatalf("the window starts at approval and lasts 2h: %v..%v", g.Start, g.End)
	}

	// The text views name the approver.
	text := r.mustOK(r.run("grant", "list"))
	if !strings.Contains(text, id) || !strings.Contains(text, "carol") || !strings.Contains(text, "active") {
		t.Fatalf("grant list:\n%s", text)
	}
	text = r.mustOK(r.run("grant", "show", id))
	if !strings.Contains(text, "approve by carol: counted") {
		t.Fatalf("grant show:\n%s", text)
	}

	// Early check-in by the principal.
	out = r.mustOK(r.as("alice", "grant", "revoke", id, "--reason", "done early"))
	if !strings.Contains(out, "Revoked "+id) {
		t.Fatalf("revoke output: %s", out)
	}
	g = r.show(id)
	if g.Status != "revoked" || g.Active || g.RevokedBy != "alice" || g.RevokeReason != "done early" {
		t.Fatalf("after revoke: %+v", g)
	}

	// A repository grant is revoked by its address.
	r.mustOK(r.as("carol", "grant", "revoke", "grant.alice_repo", "--reason", "ticket closed"))
	if got := r.list("--active").Grants; len(got) != 0 {
		t.Fatalf("after both revocations nothing is active: %+v", got)
	}
	if g := r.show("grant.alice_repo"); g.Status != "revoked" || g.RevokedBy != "carol" {
		t.Fatalf("repository grant after revoke: %+v", g)
	}

	// The ledger verifies and every grant event is signed.
	r.mustOK(r.run("ledger", "verify"))
}

func TestGrantTwoApprovers(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	id := r.request("alice", "--policy", "two", "--duration", "1h", "--reason", "upgrade")
	out := r.mustOK(r.as("carol", "grant", "approve", id))
	if !strings.Contains(out, "(1 of 2)") || !strings.Contains(out, "dave") {
		t.Fatalf("first approval: %s", out)
	}
	_, stderr, code := r.as("carol", "grant", "approve", id)
	if code != 1 || !strings.Contains(stderr, "carol already approved it; each approver counts once") {
		t.Fatalf("second approval by carol: exit %d: %s", code, stderr)
	}
	out = r.mustOK(r.as("dave", "grant", "approve", id, "--until", "+30m"))
	if !strings.Contains(out, "Approved "+id+" (by carol, dave)") {
		t.Fatalf("second approver: %s", out)
	}
	g := r.show(id)
	if d := g.End.Sub(*g.Start); d > 31*time.Minute || d < 29*time.Minute {
		t.Fatalf("dave shortened the window to 30m; it is %s", d)
	}
}

func TestGrantBreakGlass(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	id := r.request("alice", "--policy", "bg", "--duration", "30m", "--reason", "INC42 outage", "--break-glass")
	g := r.show(id)
	if !g.Active || !g.BreakGlass || !g.Unreviewed || len(g.Approvers) != 0 {
		t.Fatalf("break-glass grant: %+v", g)
	}
	text := r.mustOK(r.run("grant", "list", "--active"))
	if !strings.Contains(text, "BREAK-GLASS UNREVIEWED") {
		t.Fatalf("grant list does not flag the break-glass grant:\n%s", text)
	}
	if log := r.mustOK(r.run("ledger", "log")); !strings.Contains(log, id+": alice in policy.bg for 30m0s BREAK-GLASS") {
		t.Fatalf("ledger log does not flag the break-glass request:\n%s", log)
	}
	_, stderr, code := r.as("alice", "grant", "review", id)
	if code != 1 || !strings.Contains(stderr, "not an approver of policy.bg") {
		t.Fatalf("self-review: exit %d: %s", code, stderr)
	}
	r.mustOK(r.as("carol", "grant", "review", id, "--reason", "post-mortem done"))
	if g := r.show(id); !g.BreakGlass || g.Unreviewed || g.ReviewedBy != "carol" {
		t.Fatalf("after review: %+v", g)
	}
	text = r.mustOK(r.run("grant", "list", "--active"))
	if !strings.Contains(text, "BREAK-GLASS") || strings.Contains(text, "UNREVIEWED") {
		t.Fatalf("after review the grant stays flagged break-glass, no longer unreviewed:\n%s", text)
	}
}

// TestGrantAgent signs with a key held by an ssh-agent, chosen by the
// actor's declared key among several.
func TestGrantAgent(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	keyring := agent.NewKeyring()
	for _, name := range []string{"erin", "carol", "bob"} {
		if err := keyring.Add(agent.AddedKey{PrivateKey: r.priv[name]}); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "jfag")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()
	r.env["SSH_AUTH_SOCK"] = sock

	id := r.request("alice", "--policy", "ops", "--duration", "1h", "--ticket", "CHG1", "--reason", "x")
	r.env["JITFORM_ACTOR"] = "carol"
	r.mustOK(r.run("grant", "approve", id))
	if g := r.show(id); g.Status != "approved" || g.Approvers[0] != "carol" {
		t.Fatalf("agent-signed approval: %+v", g)
	}
	r.env["JITFORM_ACTOR"] = "dave"
	_, stderr, code := r.run("grant", "revoke", id, "--reason", "x")
	if code != 1 || !strings.Contains(stderr, "no key in ssh-agent matches the declared ssh_key") {
		t.Fatalf("agent without dave's key: exit %d: %s", code, stderr)
	}
}

// TestGrantRefusals: every refusal is a clear sentence, exit 1, and writes
// nothing to the ledger.
func TestGrantRefusals(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	pending := r.request("alice", "--policy", "two", "--duration", "1h", "--reason", "p")
	pendingStart := r.request("alice", "--policy", "two", "--start", "+10m", "--duration", "1h", "--reason", "p")
	active := r.request("bob", "--policy", "ops", "--duration", "1h", "--ticket", "CHG2", "--reason", "b")
	r.mustOK(r.as("carol", "grant", "approve", active))

	denied := r.request("alice", "--policy", "two", "--duration", "1h", "--reason", "d")
	r.mustOK(r.as("dave", "grant", "deny", denied, "--reason", "no"))
	revoked := r.request("alice", "--policy", "bg", "--duration", "1h", "--reason", "v")
	r.mustOK(r.as("carol", "grant", "approve", revoked))
	r.mustOK(r.as("alice", "grant", "revoke", revoked, "--reason", "done"))
	glass := r.request("alice", "--policy", "bg", "--duration", "30m", "--reason", "g", "--break-glass")
	r.mustOK(r.as("carol", "grant", "review", glass))

	// An expired request, written as if made two days ago.
	expired := appendRequest(t, r, "alice", time.Now().Add(-48*time.Hour), state.GrantRequest{
		Policy: "policy.ops", Principal: "alice", Duration: "1h0m0s", Ticket: "CHG3", Reason: "old"})

	encKey := filepath.Join(t.TempDir(), "enc")
	block, _ := ssh.MarshalPrivateKeyWithPassphrase(r.priv["carol"], "", []byte("pw"))
	os.WriteFile(encKey, pem.EncodeToMemory(block), 0o600)

	req := []string{"grant", "request", "--policy", "ops", "--duration", "1h", "--ticket", "CHG9", "--reason", "r"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no identity", req, "say who is requesting: --as NAME"},
		{"unknown actor", append(req, "--as", "mallory", "--key", r.keys["erin"]), `"mallory" is not a declared actor`},
		{"unknown policy", []string{"grant", "request", "--policy", "nope", "--duration", "1h", "--reason", "r", "--as", "alice", "--key", r.keys["alice"]}, `policy "nope" is not declared (policies: ops, two, bg, repo)`},
		{"no reason", []string{"grant", "request", "--policy", "ops", "--duration", "1h", "--ticket", "CHG9", "--as", "alice", "--key", r.keys["alice"]}, "--reason is required"},
		{"no duration", []string{"grant", "request", "--policy", "ops", "--ticket", "CHG9", "--reason", "r", "--as", "alice", "--key", r.keys["alice"]}, "--duration is required"},
		{"too long", []string{"grant", "request", "--policy", "two", "--duration", "5h", "--reason", "r", "--as", "alice", "--key", r.keys["alice"]}, "duration 5h exceeds the max_duration 4h of policy.two"},
		{"bad ticket", []string{"grant", "request", "--policy", "ops", "--duration", "1h", "--ticket", "INC1", "--reason", "r", "--as", "alice", "--key", r.keys["alice"]}, `ticket "INC1" does not match the ticket_pattern`},
		{"not eligible", append(req, "--as", "erin", "--key", r.keys["erin"]), "principal: erin is not eligible for policy.ops"},
		{"on behalf, not eligible", append(req, "--principal", "svc-x", "--as", "erin", "--key", r.keys["erin"]), "erin may not request on behalf of svc-x: only actors eligible under policy.ops (alice, bob, svc-deploy) may"},
		{"for another actor", append(req, "--principal", "alice", "--as", "bob", "--key", r.keys["bob"]), "alice is a declared actor, so only alice may request access for alice"},
		{"window already over", append(req, "--start", "-3h", "--as", "alice", "--key", r.keys["alice"]), "is already over"},
		{"max_active", append(req, "--as", "bob", "--key", r.keys["bob"]), "bob already holds 1 grant(s) under policy.ops overlapping this window"},
		{"break-glass not allowed", append(req, "--break-glass", "--as", "alice", "--key", r.keys["alice"]), "policy.ops has no break_glass block"},
		{"break-glass too long", []string{"grant", "request", "--policy", "bg", "--duration", "2h", "--reason", "r", "--break-glass", "--as", "alice", "--key", r.keys["alice"]}, "break-glass --duration 2h0m0s is longer than policy.bg allows"},
		{"repository policy", []string{"grant", "request", "--policy", "repo", "--duration", "1h", "--reason", "r", "--as", "alice", "--key", r.keys["alice"]}, `policy.repo takes approvals by repository review (approval = "repository")`},
		{"someone else's key", []string{"grant", "approve", pending, "--as", "carol", "--key", r.keys["dave"]}, "is not the ssh_key declared for this actor"},
		{"encrypted key, no terminal", []string{"grant", "approve", pending, "--as", "carol", "--key", encKey}, "is encrypted and there is no terminal"},
		{"no agent", []string{"grant", "approve", pending, "--as", "carol"}, "SSH_AUTH_SOCK is not set"},
		{"approve own request", []string{"grant", "approve", pending, "--as", "alice", "--key", r.keys["alice"]}, "alice is not an approver of policy.two"},
		{"approve by non-approver", []string{"grant", "approve", pending, "--as", "erin", "--key", r.keys["erin"]}, "erin is not an approver of policy.two (approvers: carol, dave)"},
		{"approve unknown", []string{"grant", "approve", "g-zzzzzzzzzz", "--as", "carol", "--key", r.keys["carol"]}, "no grant g-zzzzzzzzzz in the ledger"},
		{"approve expired", []string{"grant", "approve", expired, "--as", "carol", "--key", r.keys["carol"]}, "the request expired at"},
		{"approve already approved", []string{"grant", "approve", active, "--as", "dave", "--key", r.keys["dave"]}, "it is already approved (by carol)"},
		{"lengthen", []string{"grant", "approve", pendingStart, "--until", "+3h", "--as", "carol", "--key", r.keys["carol"]}, "an approver may shorten a window, never lengthen it"},
		{"deny without reason", []string{"grant", "deny", pending, "--as", "carol", "--key", r.keys["carol"]}, "--reason is required for grant deny"},
		{"deny approved", []string{"grant", "deny", active, "--reason", "x", "--as", "carol", "--key", r.keys["carol"]}, "it is already approved; end it with jitform grant revoke"},
		{"revoke by outsider", []string{"grant", "revoke", active, "--reason", "x", "--as", "erin", "--key", r.keys["erin"]}, "erin is neither an approver of policy.ops, the requester nor the principal"},
		{"revoke unknown block", []string{"grant", "revoke", "grant.nope", "--reason", "x", "--as", "carol", "--key", r.keys["carol"]}, "no grant grant.nope"},
		{"review a normal grant", []string{"grant", "review", active, "--as", "carol", "--key", r.keys["carol"]}, "is not a break-glass grant"},
		{"approve denied", []string{"grant", "approve", denied, "--as", "carol", "--key", r.keys["carol"]}, "the request was denied by dave"},
		{"approve revoked", []string{"grant", "approve", revoked, "--as", "carol", "--key", r.keys["carol"]}, "the grant was revoked"},
		{"revoke twice", []string{"grant", "revoke", revoked, "--reason", "x", "--as", "carol", "--key", r.keys["carol"]}, "it was already revoked at"},
		{"revoke denied", []string{"grant", "revoke", denied, "--reason", "x", "--as", "carol", "--key", r.keys["carol"]}, "it is denied; it grants nothing"},
		{"deny by outsider", []string{"grant", "deny", pending, "--reason", "x", "--as", "erin", "--key", r.keys["erin"]}, "erin is neither an approver of policy.two nor the requester"},
		{"review twice", []string{"grant", "review", glass, "--as", "carol", "--key", r.keys["carol"]}, "it was already reviewed by carol"},
		{"approve break-glass", []string{"grant", "approve", glass, "--as", "carol", "--key", r.keys["carol"]}, "a break-glass grant needs no approval"},
		{"approve with --until in the past", []string{"grant", "approve", pending, "--until", "-1m", "--as", "carol", "--key", r.keys["carol"]}, "is not in the future"},
		{"show unknown", []string{"grant", "show", "g-zzzzzzzzzz"}, "no grant g-zzzzzzzzzz in the ledger or the repository"},
		{"list both filters", []string{"grant", "list", "--active", "--pending"}, "--active and --pending exclude each other"},
		{"unknown subcommand", []string{"grant", "aprove"}, `unknown grant command "aprove"`},
	}
	before := ledgerLen(t, r)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := r.run(tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
	if after := ledgerLen(t, r); after != before {
		t.Fatalf("refused commands wrote %d ledger event(s)", after-before)
	}
}

func ledgerLen(t *testing.T, r *grantRepo) int {
	t.Helper()
	b, err := state.NewLocal(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// appendRequest writes a request signed by name at a chosen time, as an
// older jitform would have.
func appendRequest(t *testing.T, r *grantRepo, name string, at time.Time, q state.GrantRequest) string {
	t.Helper()
	id, err := state.NewGrantID()
	if err != nil {
		t.Fatal(err)
	}
	q.ID = id
	ev, err := state.NewSignedEvent(state.EventRequest, name, at, q)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(r.priv[name])
	if err := state.SignEvent(&ev, s); err != nil {
		t.Fatal(err)
	}
	b, err := state.NewLocal(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGrantVerifiesWithOpenSSH follows docs/grants.md: rebuild the signed
// bytes of a CLI-written approval from the stored ledger line with jq and
// verify the signature with ssh-keygen -Y verify, namespace jitform.
func TestGrantVerifiesWithOpenSSH(t *testing.T) {
	t.Parallel()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed: skipping the documented verification recipe")
	}
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq not installed: skipping the documented verification recipe")
	}
	r := newGrantRepo(t)
	id := r.request("alice", "--policy", "ops", "--duration", "1h", "--ticket", "CHG1", "--reason", "verify me")
	r.mustOK(r.as("carol", "grant", "approve", id))

	raw, err := os.ReadFile(filepath.Join(r.dir, ".jitform", "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var line []byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if bytes.Contains(l, []byte(`"type":"approve"`)) {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no approve event in the ledger:\n%s", raw)
	}
	dir := t.TempDir()
	pub, _ := ssh.NewPublicKey(r.priv["carol"].Public())
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, append([]byte("carol "), ssh.MarshalAuthorizedKey(pub)...), 0o600)
	jq := func(prog string) []byte {
		cmd := exec.Command("jq", "-j", prog)
		cmd.Stdin = bytes.NewReader(line)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("jq %s: %v", prog, err)
		}
		return out
	}
	sigFile := filepath.Join(dir, "ev.sig")
	os.WriteFile(sigFile, jq(".sig"), 0o600)
	data := jq(state.SignedDataJQ)
	verify := func(data []byte) (string, error) {
		cmd := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "carol", "-n", "jitform", "-s", sigFile)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(data); err != nil || !strings.Contains(out, `Good "jitform" signature for carol`) {
		t.Fatalf("ssh-keygen -Y verify: %v\n%s", err, out)
	}
	if out, err := verify(bytes.Replace(data, []byte(id), []byte("g-aaaaaaaaaa"), 1)); err == nil {
		t.Fatalf("ssh-keygen accepted the approval for another grant: %s", out)
	}
}

// TestGrantPlanApply drives the whole loop on an LDIF directory: a signed
// request and approval make plan add the member naming the approver; apply
// adds it; the principal's early check-in makes the next plan remove it.
func TestGrantPlanApply(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	ldif, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "directory.ldif"), ldif, 0o644); err != nil {
		t.Fatal(err)
	}
	hcl, _ := os.ReadFile(filepath.Join(r.dir, "main.hcl"))
	hcl = bytes.Replace(hcl, []byte("cn=ops,ou=groups,dc=example,dc=org"), []byte("cn=web-admins,ou=groups,dc=example,dc=org"), 1)
	os.WriteFile(filepath.Join(r.dir, "main.hcl"), hcl, 0o644)
	// Only the ledger grant, not the repository one, should act here.
	r.mustOK(r.as("carol", "grant", "revoke", "grant.alice_repo", "--reason", "not this one"))

	id := r.request("bob", "--policy", "ops", "--duration", "2h", "--ticket", "CHG7", "--reason", "deploy")
	plan := func() map[string]any {
		out := r.mustOK(r.run("plan", "--json"))
		var p map[string]any
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("plan --json: %v\n%s", err, out)
		}
		return p
	}
	changesFor := func(p map[string]any, member string) []map[string]any {
		var out []map[string]any
		for _, c := range p["changes"].([]any) {
			ch := c.(map[string]any)
			if strings.Contains(ch["member"].(string), member) {
				out = append(out, ch)
			}
		}
		return out
	}
	if chs := changesFor(plan(), "uid=bob,"); len(chs) != 0 {
		t.Fatalf("a pending request adds nobody: %v", chs)
	}
	r.mustOK(r.as("dave", "grant", "approve", id))
	chs := changesFor(plan(), "uid=bob,")
	if len(chs) != 1 || chs[0]["action"] != "add" {
		t.Fatalf("after approval, plan adds bob once: %v", chs)
	}
	reason := chs[0]["reason"].(map[string]any)
	if reason["grant"] != id || fmt.Sprint(reason["approvers"]) != "[dave]" {
		t.Fatalf("the add names the grant and its verified approver: %v", reason)
	}
	r.mustOK(r.run("apply", "--auto-approve"))
	if got, _ := os.ReadFile(filepath.Join(r.dir, "directory.ldif")); !bytes.Contains(got, []byte("member: uid=bob,ou=people,dc=example,dc=org")) {
		t.Fatalf("apply did not add bob to the directory")
	}
	r.mustOK(r.as("bob", "grant", "revoke", id, "--reason", "done"))
	chs = changesFor(plan(), "uid=bob,")
	if len(chs) != 1 || chs[0]["action"] != "remove" || chs[0]["reason"].(map[string]any)["kind"] != "revoked" {
		t.Fatalf("after the check-in, plan removes bob as revoked: %v", chs)
	}
}
