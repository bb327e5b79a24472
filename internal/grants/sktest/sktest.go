// Package sktest makes FIDO security-key SSH keys and signatures in
// software, from the format OpenSSH documents in PROTOCOL.u2f, so that
// tests can exercise security-key signatures without hardware.
//
// An sk signature is made by the authenticator over
//
//	SHA256(application) || flags || counter (uint32, big-endian) || SHA256(message)
//
// (for sk-ecdsa-sha2-nistp256@openssh.com the authenticator signs the
// SHA-256 of those bytes with ECDSA), and the SSH signature blob is
//
//	string format, string signature, byte flags, uint32 counter
//
// where signature is the raw ed25519 signature, or mpint r || mpint s.
package sktest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/ssh"
)

// Key types of FIDO security keys, as OpenSSH names them.
const (
	TypeEd25519 = "sk-ssh-ed25519@openssh.com"
	TypeECDSA   = "sk-ecdsa-sha2-nistp256@openssh.com"
)

// Flags an authenticator sets in a signature (PROTOCOL.u2f).
const (
	FlagUserPresence     byte = 0x01
	FlagUserVerification byte = 0x04
)

// Application is the FIDO application OpenSSH uses by default.
const Application = "ssh:"

// Signer is a software security key: an ssh.Signer whose signatures carry
// Flags and an incrementing counter, as a hardware key's would.
type Signer struct {
	Flags   byte
	Counter uint32
	pub     ssh.PublicKey
	ed      ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	app     string
}

// New makes a software security key of the given type (TypeEd25519 or
// TypeECDSA) whose signatures assert flags.
func New(keyType string, flags byte) (*Signer, error) {
	s := &Signer{Flags: flags, app: Application}
	var wire []byte
	switch keyType {
	case TypeEd25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		s.ed = priv
		wire = ssh.Marshal(struct {
			Name, Key, App string
		}{TypeEd25519, string(pub), s.app})
	case TypeECDSA:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		s.ec = priv
		point, err := priv.PublicKey.ECDH()
		if err != nil {
			return nil, err
		}
		wire = ssh.Marshal(struct {
			Name, Curve, Key, App string
		}{TypeECDSA, "nistp256", string(point.Bytes()), s.app})
	default:
		return nil, fmt.Errorf("sktest: unknown security-key type %q", keyType)
	}
	pub, err := ssh.ParsePublicKey(wire)
	if err != nil {
		return nil, fmt.Errorf("sktest: parse the %s public key: %w", keyType, err)
	}
	s.pub = pub
	return s, nil
}

// MustNew is New for tests.
func MustNew(keyType string, flags byte) *Signer {
	s, err := New(keyType, flags)
	if err != nil {
		panic(err)
	}
	return s
}

// PublicKey is the security key's public key.
func (s *Signer) PublicKey() ssh.PublicKey { return s.pub }

// AuthorizedKey is the public key as an actor's ssh_key.
func (s *Signer) AuthorizedKey() string {
	return string(ssh.MarshalAuthorizedKey(s.pub))
}

// Sign signs data as a FIDO authenticator would, with s.Flags and the next
// counter value.
func (s *Signer) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	s.Counter++
	appDigest := sha256.Sum256([]byte(s.app))
	msgDigest := sha256.Sum256(data)
	signed := make([]byte, 0, 32+1+4+32)
	signed = append(signed, appDigest[:]...)
	signed = append(signed, s.Flags)
	signed = binary.BigEndian.AppendUint32(signed, s.Counter)
	signed = append(signed, msgDigest[:]...)
	rest := binary.BigEndian.AppendUint32([]byte{s.Flags}, s.Counter)
	if s.ed != nil {
		return &ssh.Signature{Format: TypeEd25519, Blob: ed25519.Sign(s.ed, signed), Rest: rest}, nil
	}
	digest := sha256.Sum256(signed)
	r, ss, err := ecdsa.Sign(rand.Reader, s.ec, digest[:])
	if err != nil {
		return nil, err
	}
	blob := ssh.Marshal(struct{ R, S *big.Int }{r, ss})
	return &ssh.Signature{Format: TypeECDSA, Blob: blob, Rest: rest}, nil
}
