package operation

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
)

// Account passwords (rotate_password) are generated here, encrypted with
// age to the grant principal's declared SSH key (agessh: ssh-ed25519 and
// ssh-rsa recipients), and stored as ciphertext in the state's
// CredentialStore. The ledger records only Fingerprint(ciphertext).

// PasswordLength is the length of a generated account password.
const PasswordLength = 28

const (
	lower   = "abcdefghijkmnopqrstuvwxyz" // no l: unambiguous when read aloud
	upper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"  // no I, O
	digits  = "23456789"                  // no 0, 1
	symbols = "-_.+=#%@!"
)

// NewPassword returns a random password of PasswordLength characters from
// crypto/rand with at least one lower-case letter, upper-case letter, digit
// and symbol, so that Windows and Active Directory complexity rules accept it.
func NewPassword() (config.Secret, error) {
	alphabet := lower + upper + digits + symbols
	for {
		b := make([]byte, PasswordLength)
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return config.Secret{}, fmt.Errorf("generate a password: %w", err)
			}
			b[i] = alphabet[n.Int64()]
		}
		s := string(b)
		if strings.ContainsAny(s, lower) && strings.ContainsAny(s, upper) && strings.ContainsAny(s, digits) && strings.ContainsAny(s, symbols) {
			return config.NewSecret(s), nil
		}
	}
}

// EncryptCredential encrypts the password to an SSH public key in
// authorized_keys format (an actor's ssh_key), ASCII-armored.
func EncryptCredential(sshPublicKey string, password config.Secret) ([]byte, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sshPublicKey))
	if err != nil {
		return nil, fmt.Errorf("encrypt the credential: parse the ssh_key: %w", err)
	}
	var rcpt age.Recipient
	switch pk.Type() {
	case ssh.KeyAlgoED25519:
		rcpt, err = agessh.NewEd25519Recipient(pk)
	case ssh.KeyAlgoRSA:
		rcpt, err = agessh.NewRSARecipient(pk)
	default:
		return nil, fmt.Errorf("encrypt the credential: an %s key cannot receive age-encrypted files; declare an ssh-ed25519 or ssh-rsa key", pk.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("encrypt the credential: %w", err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rcpt)
	if err != nil {
		return nil, fmt.Errorf("encrypt the credential: %w", err)
	}
	if _, err := io.WriteString(w, password.Reveal()); err != nil {
		return nil, fmt.Errorf("encrypt the credential: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt the credential: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("encrypt the credential: %w", err)
	}
	return buf.Bytes(), nil
}

// ErrKeyPassphrase: the private key is protected by a passphrase and none
// was given.
var ErrKeyPassphrase = errors.New("the SSH private key is protected by a passphrase")

// DecryptCredential decrypts a stored credential with the principal's SSH
// private key (OpenSSH PEM). passphrase, when not nil, is asked for a
// protected key.
func DecryptCredential(ciphertext, privateKey []byte, passphrase func() ([]byte, error)) (config.Secret, error) {
	id, err := agessh.ParseIdentity(privateKey)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil || missing.PublicKey == nil {
			return config.Secret{}, ErrKeyPassphrase
		}
		id, err = agessh.NewEncryptedSSHIdentity(missing.PublicKey, privateKey, passphrase)
	}
	if err != nil {
		return config.Secret{}, fmt.Errorf("read the SSH private key: %w", err)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(ciphertext)), id)
	if err != nil {
		return config.Secret{}, fmt.Errorf("decrypt the credential (is this the key of the grant's principal?): %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return config.Secret{}, fmt.Errorf("decrypt the credential: %w", err)
	}
	return config.NewSecret(string(b)), nil
}

// Fingerprint is what the ledger records of a stored credential: the first
// 16 hex digits of the SHA-256 of its ciphertext.
func Fingerprint(ciphertext []byte) string {
	h := sha256.Sum256(ciphertext)
	return hex.EncodeToString(h[:])[:16]
}
