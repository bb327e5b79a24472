package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/jitform/jitform/internal/grants/sktest"
)

// skAgent is an ssh-agent holding software security keys: it signs the
// way ssh-agent does with a FIDO key (the signature carries the flags and
// counter), so the CLI's whole signing path runs without hardware.
type skAgent struct{ keys []*sktest.Signer }

func (a *skAgent) List() ([]*agent.Key, error) {
	var out []*agent.Key
	for _, k := range a.keys {
		out = append(out, &agent.Key{Format: k.PublicKey().Type(), Blob: k.PublicKey().Marshal(), Comment: "sk"})
	}
	return out, nil
}

func (a *skAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	for _, k := range a.keys {
		if bytes.Equal(k.PublicKey().Marshal(), key.Marshal()) {
			return k.Sign(nil, data)
		}
	}
	return nil, errors.New("no such key")
}

func (a *skAgent) Signers() ([]ssh.Signer, error) {
	var out []ssh.Signer
	for _, k := range a.keys {
		out = append(out, k)
	}
	return out, nil
}

func (a *skAgent) Add(agent.AddedKey) error       { return errors.New("read-only") }
func (a *skAgent) Remove(ssh.PublicKey) error     { return errors.New("read-only") }
func (a *skAgent) RemoveAll() error               { return errors.New("read-only") }
func (a *skAgent) Lock(passphrase []byte) error   { return errors.New("read-only") }
func (a *skAgent) Unlock(passphrase []byte) error { return errors.New("read-only") }

// TestGrantSecurityKey: under require_security_key = "user_verification",
// the CLI refuses, before writing, an approval whose security-key signature
// asserts only presence, and one signed with an ordinary key; a
// user-verified approval is written, and grant show names the factor.
func TestGrantSecurityKey(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	sam := sktest.MustNew(sktest.TypeEd25519, sktest.FlagUserPresence|sktest.FlagUserVerification)
	uma := sktest.MustNew(sktest.TypeECDSA, sktest.FlagUserPresence)
	vic := sktest.MustNew(sktest.TypeECDSA, sktest.FlagUserPresence|sktest.FlagUserVerification)
	var hcl strings.Builder
	for name, k := range map[string]*sktest.Signer{"sam": sam, "uma": uma, "vic": vic} {
		hcl.WriteString("actor \"" + name + "\" {\n  ssh_key = \"" + strings.TrimSpace(k.AuthorizedKey()) + "\"\n}\n\n")
	}
	hcl.WriteString(`
policy "fido" {
  groups       = [group.ops]
  eligible     = ["sam", "svc-deploy"]
  max_duration = "4h"
  approvers    = ["uma", "vic"]
  approval     = "ledger"
  require_security_key = "user_verification"
}
`)
	if err := os.WriteFile(filepath.Join(r.dir, "fido.hcl"), []byte(hcl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "jfsk")
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
	keys := &skAgent{keys: []*sktest.Signer{sam, uma, vic}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keys, c) }()
		}
	}()
	r.env["SSH_AUTH_SOCK"] = sock

	r.env["JITFORM_ACTOR"] = "sam"
	out := r.mustOK(r.run("grant", "request", "--policy", "fido", "--principal", "svc-deploy", "--duration", "1h", "--reason", "patch"))
	id := strings.TrimSpace(out)

	// uma's key is a security key, so the check before signing passes;
	// the signature she makes asserts presence only, and nothing is written.
	before := ledgerLen(t, r)
	r.env["JITFORM_ACTOR"] = "uma"
	_, stderr, code := r.run("grant", "approve", id)
	if code != 1 || !strings.Contains(stderr, "requires user verification") {
		t.Fatalf("presence-only approval: exit %d: %s", code, stderr)
	}
	if n := ledgerLen(t, r); n != before {
		t.Fatalf("a refused approval was written: ledger %d -> %d events", before, n)
	}

	r.env["JITFORM_ACTOR"] = "vic"
	r.mustOK(r.run("grant", "approve", id))
	g := r.show(id)
	if g.Status != "approved" || g.ApproverFactors["vic"] != "security_key_user_verified" || g.RequestFactor != "security_key_user_verified" {
		t.Fatalf("grant show --json: %+v", g)
	}
	text := r.mustOK(r.run("grant", "show", id))
	for _, want := range []string{"approvers:  vic (security key, user verified) (1 needed)", "requested:  by sam (security key, user verified)"} {
		if !strings.Contains(text, want) {
			t.Fatalf("grant show does not say %q:\n%s", want, text)
		}
	}
	list := r.mustOK(r.run("grant", "list"))
	if !strings.Contains(list, "vic (security key, user verified)") {
		t.Fatalf("grant list does not name the factor:\n%s", list)
	}
}
