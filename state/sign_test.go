package state

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func newEd25519(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, string(ssh.MarshalAuthorizedKey(s.PublicKey()))
}

func approveEvent(t *testing.T, grant string) Event {
	t.Helper()
	ev, err := NewSignedEvent(EventApprove, "carol", time.Date(2026, 11, 23, 9, 0, 0, 123456789, time.UTC),
		GrantDecision{Grant: grant, Reason: "ok <&> ünïcode"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSignVerifyKeyTypes(t *testing.T) {
	t.Parallel()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, key := range map[string]any{"ed25519": edPriv, "ecdsa": ecPriv, "rsa": rsaPriv} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := ssh.NewSignerFromKey(key)
			if err != nil {
				t.Fatal(err)
			}
			ev := approveEvent(t, "g-aaaaaaaaaa")
			if err := SignEvent(&ev, s); err != nil {
				t.Fatal(err)
			}
			if err := VerifyEvent(ev, string(ssh.MarshalAuthorizedKey(s.PublicKey()))); err != nil {
				t.Fatalf("VerifyEvent: %v", err)
			}
		})
	}
}

func TestVerifyEventRefusals(t *testing.T) {
	t.Parallel()
	carol, carolKey := newEd25519(t)
	_, daveKey := newEd25519(t)

	signed := func(mut func(*Event)) Event {
		ev := approveEvent(t, "g-aaaaaaaaaa")
		if err := SignEvent(&ev, carol); err != nil {
			t.Fatal(err)
		}
		if mut != nil {
			mut(&ev)
		}
		return ev
	}
	otherNS := func(ev *Event) {
		// A valid signature by carol's key, but made for git, not jitform.
		data, _ := ev.SignedData()
		var b bytes.Buffer
		b.Write(data)
		ev.Sig = signNamespace(t, carol, b.Bytes(), "git")
	}
	tests := []struct {
		name string
		ev   Event
		key  string
		want error
	}{
		{"good", signed(nil), carolKey, nil},
		{"reordered payload keys still verify", signed(func(ev *Event) {
			ev.Payload = json.RawMessage(`{ "reason":"ok <&> ünïcode",  "grant":"g-aaaaaaaaaa"}`)
		}), carolKey, nil},
		{"time in another zone is the same instant", signed(func(ev *Event) {
			ev.Time = ev.Time.In(time.FixedZone("CET", 3600))
		}), carolKey, nil},
		{"unsigned", signed(func(ev *Event) { ev.Sig = "" }), carolKey, ErrUnsigned},
		{"not armored", signed(func(ev *Event) { ev.Sig = "hello" }), carolKey, ErrMalformedSignature},
		{"wrong key", signed(nil), daveKey, ErrWrongKey},
		{"payload altered (replay onto another grant)", signed(func(ev *Event) {
			ev.Payload = json.RawMessage(`{"grant":"g-bbbbbbbbbb","reason":"ok <&> ünïcode"}`)
		}), carolKey, ErrBadSignature},
		{"actor altered", signed(func(ev *Event) { ev.Actor = "dave" }), carolKey, ErrBadSignature},
		{"type altered", signed(func(ev *Event) { ev.Type = EventRevoke }), carolKey, ErrBadSignature},
		{"time altered", signed(func(ev *Event) { ev.Time = ev.Time.Add(time.Nanosecond) }), carolKey, ErrBadSignature},
		{"other namespace", signed(otherNS), carolKey, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyEvent(tc.ev, tc.key)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyEvent: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyEvent error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignedDataLayout(t *testing.T) {
	t.Parallel()
	ev := Event{
		Seq: 7, Prev: "p", Hash: "h", Sig: "s",
		Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("X", 7200)), Type: EventApprove, Actor: "carol",
		Payload: json.RawMessage(`{"until":"2026-11-23T11:00:00Z", "grant":"g-aaaaaaaaaa","n":1.50}`),
	}
	got, err := ev.SignedData()
	if err != nil {
		t.Fatal(err)
	}
	want := "jitform-event-v1\ntype approve\nactor carol\ntime 2026-11-23T08:00:00Z\n" +
		`payload {"grant":"g-aaaaaaaaaa","n":1.50,"until":"2026-11-23T11:00:00Z"}` + "\n"
	if string(got) != want {
		t.Fatalf("SignedData:\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []Event{
		{Type: "approve", Actor: "carol\ntype revoke", Payload: json.RawMessage(`{}`)},
		{Type: "approve", Actor: "", Payload: json.RawMessage(`{}`)},
		{Type: "approve", Actor: "carol", Payload: json.RawMessage(`{} {}`)},
		{Type: "approve", Actor: "carol", Payload: json.RawMessage(`{`)},
	} {
		if _, err := bad.SignedData(); err == nil {
			t.Errorf("SignedData(%+v) succeeded; want an error", bad)
		}
	}
}

func TestGrantID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 2000 {
		id, err := NewGrantID()
		if err != nil {
			t.Fatal(err)
		}
		if !IsGrantID(id) {
			t.Fatalf("NewGrantID() = %q, not a grant ID", id)
		}
		if seen[id] {
			t.Fatalf("NewGrantID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, s := range []string{"", "g-", "g-AAAAAAAAAA", "g-aaaaaaaaa", "x-aaaaaaaaaa", "grant.alice"} {
		if IsGrantID(s) {
			t.Errorf("IsGrantID(%q) = true", s)
		}
	}
}

// signNamespace signs data the way ssh-keygen would, in another namespace.
func signNamespace(t *testing.T, s ssh.Signer, data []byte, ns string) string {
	t.Helper()
	sig, err := sshsig.Sign(bytes.NewReader(data), s, sshsig.HashSHA512, ns)
	if err != nil {
		t.Fatal(err)
	}
	return string(sshsig.Armor(sig))
}

func needSSHKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed: skipping the OpenSSH interoperability test (apt-get install openssh-client)")
	}
	return p
}

func run(t *testing.T, dir string, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSSHInterop proves the documented claim: ssh-keygen -Y verify
// accepts a jitform signature, and jitform accepts an ssh-keygen -Y sign
// signature, over SignedData in namespace "jitform".
func TestOpenSSHInterop(t *testing.T) {
	t.Parallel()
	keygen := needSSHKeygen(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "carol")
	run(t, dir, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "carol", "-f", keyFile)
	pubLine, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParsePublicKey(string(pubLine))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := SignerFromKeyFile(keyFile, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(allowed, []byte("carol "+string(pubLine)), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("ssh-keygen verifies jitform", func(t *testing.T) {
		ev := approveEvent(t, "g-aaaaaaaaaa")
		if err := SignEvent(&ev, signer); err != nil {
			t.Fatal(err)
		}
		data, _ := ev.SignedData()
		sigFile := filepath.Join(dir, "ev1.sig")
		if err := os.WriteFile(sigFile, []byte(ev.Sig), 0o600); err != nil {
			t.Fatal(err)
		}
		out := run(t, dir, data, keygen, "-Y", "verify", "-f", allowed, "-I", "carol", "-n", SignatureNamespace, "-s", sigFile)
		if !strings.Contains(out, "Good") {
			t.Fatalf("ssh-keygen -Y verify: %s", out)
		}
		// And it refuses the same signature over altered bytes.
		cmd := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "carol", "-n", SignatureNamespace, "-s", sigFile)
		cmd.Stdin = bytes.NewReader(bytes.Replace(data, []byte("g-aaaaaaaaaa"), []byte("g-bbbbbbbbbb"), 1))
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("ssh-keygen accepted a signature over altered data: %s", out)
		}
	})

	t.Run("jitform verifies ssh-keygen", func(t *testing.T) {
		ev := approveEvent(t, "g-cccccccccc")
		data, _ := ev.SignedData()
		msg := filepath.Join(dir, "ev2.data")
		if err := os.WriteFile(msg, data, 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, dir, nil, keygen, "-q", "-Y", "sign", "-f", keyFile, "-n", SignatureNamespace, msg)
		sig, err := os.ReadFile(msg + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		ev.Sig = string(sig)
		if err := VerifyEvent(ev, string(pubLine)); err != nil {
			t.Fatalf("VerifyEvent of an ssh-keygen signature: %v", err)
		}
	})

	t.Run("jq rebuilds the signed bytes from the stored line", func(t *testing.T) {
		if _, err := exec.LookPath("jq"); err != nil {
			t.Skip("jq not installed: skipping the documented jq recipe")
		}
		ev := approveEvent(t, "g-dddddddddd")
		if err := SignEvent(&ev, signer); err != nil {
			t.Fatal(err)
		}
		ev.Seq, ev.Prev, ev.Hash = 3, "abc", "def"
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, dir, line, "jq", "-j", SignedDataJQ)
		want, _ := ev.SignedData()
		if got != string(want) {
			t.Fatalf("jq recipe:\n%q\nSignedData:\n%q", got, want)
		}
	})
}

func TestSignerFromKeyFile(t *testing.T) {
	t.Parallel()
	keygen := needSSHKeygen(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	enc := filepath.Join(dir, "enc")
	run(t, dir, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", plain)
	run(t, dir, nil, keygen, "-q", "-t", "ed25519", "-N", "s3cret", "-f", enc)
	pub := func(f string) ssh.PublicKey {
		b, err := os.ReadFile(f + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		k, err := ParsePublicKey(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	pass := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }
	tests := []struct {
		name    string
		file    string
		want    ssh.PublicKey
		pass    func() ([]byte, error)
		wantErr string
	}{
		{"plain key", plain, pub(plain), nil, ""},
		{"encrypted key with passphrase", enc, pub(enc), pass("s3cret"), ""},
		{"encrypted key without a terminal", enc, pub(enc), nil, "is encrypted and there is no terminal"},
		{"encrypted key, wrong passphrase", enc, pub(enc), pass("nope"), "parse private key"},
		{"key of someone else", plain, pub(enc), nil, "is not the ssh_key declared for this actor"},
		{"public key given", plain + ".pub", pub(plain), nil, "is a public key"},
		{"missing file", filepath.Join(dir, "nope"), pub(plain), nil, "read key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SignerFromKeyFile(tc.file, tc.want, tc.pass)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the passphrase: %v", err)
			}
		})
	}
}

func TestSignerFromAgent(t *testing.T) {
	t.Parallel()
	erin, _ := newEd25519(t)
	keyring := agent.NewKeyring()
	_, carolPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, davePriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []any{carolPriv, davePriv} {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	carol, _ := ssh.NewSignerFromKey(carolPriv)
	dave, _ := ssh.NewSignerFromKey(davePriv)

	dir, err := os.MkdirTemp("", "jfagent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
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

	ctx := context.Background()
	s, closer, err := SignerFromAgent(ctx, sock, dave.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ev := approveEvent(t, "g-aaaaaaaaaa")
	if err := SignEvent(&ev, s); err != nil {
		t.Fatal(err)
	}
	closer.Close()
	if err := VerifyEvent(ev, string(ssh.MarshalAuthorizedKey(dave.PublicKey()))); err != nil {
		t.Fatalf("agent signature by dave's key: %v", err)
	}
	if err := VerifyEvent(ev, string(ssh.MarshalAuthorizedKey(carol.PublicKey()))); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("agent picked the wrong key: verify as carol = %v", err)
	}

	if _, _, err := SignerFromAgent(ctx, sock, erin.PublicKey()); err == nil || !strings.Contains(err.Error(), "no key in ssh-agent matches") {
		t.Fatalf("agent without the key: %v", err)
	}
	if _, _, err := SignerFromAgent(ctx, "", erin.PublicKey()); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Fatalf("no agent: %v", err)
	}
}

// FuzzVerifyEvent: no signature or payload an attacker writes into the
// ledger makes verification panic, and none verifies except the real one.
func FuzzVerifyEvent(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := ssh.NewSignerFromKey(priv)
	key := string(ssh.MarshalAuthorizedKey(s.PublicKey()))
	ev, _ := NewSignedEvent(EventApprove, "carol", time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), GrantDecision{Grant: "g-aaaaaaaaaa"})
	if err := SignEvent(&ev, s); err != nil {
		f.Fatal(err)
	}
	f.Add(ev.Sig, []byte(ev.Payload))
	f.Add(ev.Sig, []byte(`{"grant":"g-bbbbbbbbbb"}`))
	f.Add("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n", []byte(`{}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, sig string, payload []byte) {
		e := ev
		e.Sig, e.Payload = sig, payload
		err := VerifyEvent(e, key)
		if err == nil && (!sameSig(sig, ev.Sig) || !equalJSON(payload, ev.Payload)) {
			t.Fatalf("a different event verified: sig %q payload %q", sig, payload)
		}
	})
}

// sameSig: the armored texts carry the same signature (PEM allows other
// surrounding text).
func sameSig(a, b string) bool {
	sa, err1 := sshsig.Unarmor([]byte(a))
	sb, err2 := sshsig.Unarmor([]byte(b))
	return err1 == nil && err2 == nil && bytes.Equal(sa.Marshal(), sb.Marshal())
}

func equalJSON(a, b []byte) bool {
	ca, err1 := CanonicalJSON(a)
	cb, err2 := CanonicalJSON(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}
