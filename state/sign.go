package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SignatureNamespace is the ssh-keygen -Y namespace of every jitform
// signature, so that a signature made for jitform is never valid for git,
// file signing or anything else, and the other way round.
const SignatureNamespace = "jitform"

// signedDataVersion is the first line of the signed bytes; a new layout
// gets a new version so old signatures keep their meaning.
const signedDataVersion = "jitform-event-v1"

// Signature problems. VerifyEvent wraps one of these, so that callers (the
// planner's warnings) can say precisely why a signature does not count.
var (
	ErrUnsigned           = errors.New("the event is not signed")
	ErrMalformedSignature = errors.New("the signature is not an armored SSH signature")
	ErrWrongKey           = errors.New("signed with a key other than the actor's declared ssh_key")
	ErrBadSignature       = errors.New("the signature does not verify (the event was altered after signing, or the signature is forged)")
	// ErrNoUserPresence: a security-key signature whose flags do not
	// assert that the key was touched (made with no-touch-required). It
	// never counts (x/crypto refuses such signatures too; ssh-keygen -Y
	// verify does not look at the flag).
	ErrNoUserPresence = errors.New("the security-key signature does not assert user presence (the key was not touched)")
)

// Security-key key types (FIDO authenticators, OpenSSH PROTOCOL.u2f).
const (
	KeyTypeSKEd25519 = "sk-ssh-ed25519@openssh.com"
	KeyTypeSKECDSA   = "sk-ecdsa-sha2-nistp256@openssh.com"
)

// Flags of a security-key signature (PROTOCOL.u2f).
const (
	SKFlagUserPresence     byte = 0x01 // the key was touched
	SKFlagUserVerification byte = 0x04 // and the user gave a PIN or biometric
)

// IsSecurityKeyType reports whether keyType (an ssh_key's first field) is
// a FIDO security-key type.
func IsSecurityKeyType(keyType string) bool {
	return keyType == KeyTypeSKEd25519 || keyType == KeyTypeSKECDSA
}

// SignatureInfo is what a verified signature says about how it was made:
// the key type, and for a security key the flags and counter the
// authenticator signed.
type SignatureInfo struct {
	KeyType     string
	SecurityKey bool
	Flags       byte
	Counter     uint32
}

// UserPresent: a security-key signature made with a touch.
func (i SignatureInfo) UserPresent() bool {
	return i.SecurityKey && i.Flags&SKFlagUserPresence != 0
}

// UserVerified: a security-key signature made with a touch and a PIN or
// biometric.
func (i SignatureInfo) UserVerified() bool {
	return i.UserPresent() && i.Flags&SKFlagUserVerification != 0
}

// SKSignature is a parsed security-key signature blob.
type SKSignature struct {
	Format    string
	Signature []byte
	Flags     byte
	Counter   uint32
}

// ParseSKSignature parses a security-key SSH signature blob (PROTOCOL.u2f):
//
//	string format, string signature, byte flags, uint32 counter
//
// with nothing after the counter.
func ParseSKSignature(blob []byte) (SKSignature, error) {
	var out SKSignature
	format, rest, ok := sshString(blob)
	if !ok {
		return out, errors.New("security-key signature: truncated format")
	}
	if !IsSecurityKeyType(string(format)) {
		return out, fmt.Errorf("security-key signature: format %q is not a security-key type", abbreviate(string(format)))
	}
	sig, rest, ok := sshString(rest)
	if !ok {
		return out, errors.New("security-key signature: truncated signature")
	}
	if len(rest) != 5 {
		return out, fmt.Errorf("security-key signature: %d bytes after the signature, want 5 (flags byte, uint32 counter)", len(rest))
	}
	out.Format, out.Signature = string(format), sig
	out.Flags = rest[0]
	out.Counter = uint32(rest[1])<<24 | uint32(rest[2])<<16 | uint32(rest[3])<<8 | uint32(rest[4])
	return out, nil
}

// sshString splits an SSH wire string off b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	if uint64(len(b)-4) < n {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// SignedData returns the bytes an event's signature covers: everything but
// seq, prev, hash and sig, so a signature can be made before the event has
// a place in the chain. The layout, one field per line, each ending in "\n":
//
//	jitform-event-v1
//	type <type>
//	actor <actor>
//	time <time, RFC 3339 with nanoseconds as needed, UTC>
//	payload <payload as canonical JSON>
//
// Canonical JSON has object keys sorted, no insignificant whitespace and no
// HTML escaping (what `jq -cS` prints for ordinary text). jitform stores
// payloads in this form, so `ssh-keygen -Y verify -n jitform` checks a
// signature over bytes rebuilt from the stored line (docs/grants.md).
func (e Event) SignedData() ([]byte, error) {
	for _, f := range []struct{ name, v string }{{"type", e.Type}, {"actor", e.Actor}} {
		if f.v == "" || strings.ContainsAny(f.v, "\r\n") {
			return nil, fmt.Errorf("event %s %q cannot be signed: it must be one non-empty line", f.name, f.v)
		}
	}
	payload, err := CanonicalJSON(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(signedDataVersion + "\n")
	b.WriteString("type " + e.Type + "\n")
	b.WriteString("actor " + e.Actor + "\n")
	b.WriteString("time " + e.Time.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("payload ")
	b.Write(payload)
	b.WriteString("\n")
	return b.Bytes(), nil
}

// SignedDataJQ is a jq program that rebuilds SignedData from one stored
// ledger line (jq -j), for verifying with ssh-keygen without jitform.
const SignedDataJQ = `"jitform-event-v1\ntype \(.type)\nactor \(.actor)\ntime \(.time)\npayload \(.payload | tojson)\n"`

// CanonicalJSON re-encodes a JSON value with sorted object keys and no
// insignificant whitespace. Numbers keep their written form.
func CanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the value")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// SignEvent signs the event with signer and stores the armored signature in
// e.Sig. The payload is rewritten in canonical form first so that the stored
// line and the signed bytes agree.
func SignEvent(e *Event, signer ssh.Signer) error {
	canon, err := CanonicalJSON(e.Payload)
	if err != nil {
		return fmt.Errorf("sign %s event: payload: %w", e.Type, err)
	}
	e.Payload = canon
	e.Time = e.Time.UTC()
	data, err := e.SignedData()
	if err != nil {
		return fmt.Errorf("sign %s event: %w", e.Type, err)
	}
	sig, err := sshsig.Sign(bytes.NewReader(data), signer, sshsig.HashSHA512, SignatureNamespace)
	if err != nil {
		return fmt.Errorf("sign %s event as %s: %w", e.Type, e.Actor, err)
	}
	e.Sig = string(sshsig.Armor(sig))
	return nil
}

// VerifyEvent checks that e.Sig is a jitform signature over e.SignedData()
// by the key authorizedKey (one authorized_keys line: an actor's ssh_key).
// Errors wrap ErrUnsigned, ErrMalformedSignature, ErrWrongKey or
// ErrBadSignature.
func VerifyEvent(e Event, authorizedKey string) error {
	pub, err := ParsePublicKey(authorizedKey)
	if err != nil {
		return err
	}
	return VerifyEventKey(e, pub)
}

// VerifyEventKey is VerifyEvent with the key already parsed, for replaying
// many events by the same actors.
func VerifyEventKey(e Event, pub ssh.PublicKey) error {
	_, err := VerifyEventInfo(e, pub)
	return err
}

// VerifyEventInfo is VerifyEventKey that also says how the signature was
// made (SignatureInfo): the key type, and for a security key
// (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com) the
// flags and counter, which the signature covers (x/crypto verifies them as
// part of the signed data). A security-key signature without the user
// presence flag wraps ErrNoUserPresence, with its flags in the info.
func VerifyEventInfo(e Event, pub ssh.PublicKey) (SignatureInfo, error) {
	info := SignatureInfo{KeyType: pub.Type(), SecurityKey: IsSecurityKeyType(pub.Type())}
	err := verifyEvent(e, pub, &info)
	return info, err
}

func verifyEvent(e Event, pub ssh.PublicKey, info *SignatureInfo) error {
	if strings.TrimSpace(e.Sig) == "" {
		return ErrUnsigned
	}
	sig, err := sshsig.Unarmor([]byte(e.Sig))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedSignature, err)
	}
	if sig.Namespace != SignatureNamespace {
		return fmt.Errorf("%w: namespace %q, want %q", ErrBadSignature, sig.Namespace, SignatureNamespace)
	}
	if err := sig.HashAlgorithm.Available(); err != nil {
		return fmt.Errorf("%w: hash %q: %v", ErrMalformedSignature, sig.HashAlgorithm, err)
	}
	if got, want := ssh.FingerprintSHA256(sig.PublicKey), ssh.FingerprintSHA256(pub); got != want {
		return fmt.Errorf("%w: signed by %s, declared %s", ErrWrongKey, got, want)
	}
	if sig.Signature != nil && sig.Signature.Format == ssh.KeyAlgoRSA {
		// ssh-rsa signatures use SHA-1; PROTOCOL.sshsig requires rsa-sha2-*.
		return fmt.Errorf("%w: RSA signature with SHA-1 (ssh-rsa) is not accepted", ErrBadSignature)
	}
	if info.SecurityKey {
		if sig.Signature == nil {
			return fmt.Errorf("%w: no signature", ErrMalformedSignature)
		}
		sk, err := ParseSKSignature(ssh.Marshal(sig.Signature))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformedSignature, err)
		}
		if sk.Format != pub.Type() {
			return fmt.Errorf("%w: a %s signature from a %s key", ErrBadSignature, sk.Format, pub.Type())
		}
		info.Flags, info.Counter = sk.Flags, sk.Counter
		if sk.Flags&SKFlagUserPresence == 0 {
			return fmt.Errorf("%w (flags 0x%02x)", ErrNoUserPresence, sk.Flags)
		}
	}
	data, err := e.SignedData()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := sshsig.Verify(bytes.NewReader(data), sig, pub, sig.HashAlgorithm, SignatureNamespace); err != nil {
		return ErrBadSignature
	}
	return nil
}

// ParsePublicKey parses an actor's ssh_key (authorized_keys format).
func ParsePublicKey(authorizedKey string) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(authorizedKey)))
	if err != nil {
		return nil, fmt.Errorf("parse ssh_key %q: %w", abbreviate(authorizedKey), err)
	}
	return pub, nil
}

// Fingerprint is a key's SHA256 fingerprint, as ssh-keygen -l prints it.
func Fingerprint(pub ssh.PublicKey) string { return ssh.FingerprintSHA256(pub) }

func abbreviate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// SignerFromKeyFile loads the private key in path and checks that it is the
// key declared for the actor (want). An encrypted key needs passphrase;
// passphrase is nil when there is no terminal to ask on, and then an
// encrypted key is a clear error, never a hang.
func SignerFromKeyFile(path string, want ssh.PublicKey, passphrase func() ([]byte, error)) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, fmt.Errorf("key %s is encrypted and there is no terminal to ask for its passphrase: "+
				"load it into ssh-agent (ssh-add %s) and leave out --key", path, path)
		}
		pass, perr := passphrase()
		if perr != nil {
			return nil, fmt.Errorf("read the passphrase of %s: %w", path, perr)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	}
	if err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(pem), []byte("ssh-")) {
			return nil, fmt.Errorf("key %s is a public key; --key needs the private key file (without .pub)", path)
		}
		return nil, fmt.Errorf("parse private key %s: %w", path, err)
	}
	if want != nil && !bytes.Equal(signer.PublicKey().Marshal(), want.Marshal()) {
		return nil, fmt.Errorf("key %s (%s) is not the ssh_key declared for this actor (%s)",
			path, Fingerprint(signer.PublicKey()), Fingerprint(want))
	}
	return signer, nil
}

// SignerFromAgent connects to the ssh-agent at sock (SSH_AUTH_SOCK) and
// returns the agent key equal to want. Close the returned closer when done
// signing.
func SignerFromAgent(ctx context.Context, sock string, want ssh.PublicKey) (ssh.Signer, io.Closer, error) {
	if sock == "" {
		return nil, nil, errors.New("no ssh-agent (SSH_AUTH_SOCK is not set): pass --key FILE, or start ssh-agent and ssh-add your key")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to ssh-agent at %s: %w", sock, err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("list ssh-agent keys: %w", err)
	}
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want.Marshal()) {
			return s, conn, nil
		}
	}
	conn.Close()
	return nil, nil, fmt.Errorf("no key in ssh-agent matches the declared ssh_key (%s); ssh-add that key, or pass --key FILE",
		Fingerprint(want))
}
