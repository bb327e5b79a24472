package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// CredentialStore keeps the account passwords jitform delivers to grant
// principals (account rotate_password): one ciphertext per grant,
// age-encrypted to the principal's SSH key before it reaches the store,
// so a store never holds a password in clear. It is optional: a backend
// without it cannot apply accounts with rotate_password.
type CredentialStore interface {
	// PutCredential stores (or replaces) the grant's ciphertext durably.
	PutCredential(ctx context.Context, grantID string, ciphertext []byte) error
	// GetCredential returns the grant's ciphertext, or an error wrapping
	// ErrNoCredential when there is none.
	GetCredential(ctx context.Context, grantID string) ([]byte, error)
	// DeleteCredential removes the grant's ciphertext; none is no error.
	DeleteCredential(ctx context.Context, grantID string) error
}

// ErrNoCredential: no credential is stored for the grant.
var ErrNoCredential = errors.New("no credential stored for this grant")

// CredentialsDirName is the directory under .jitform/ holding one
// <grant-id>.age file (mode 0600) per delivered password.
const CredentialsDirName = "credentials"

var _ CredentialStore = (*Local)(nil)

// grantIDPattern: grant IDs are grant.NAME or ledger request IDs; anything
// else (a path separator, a leading dot) never becomes a file name.
var grantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

func (l *Local) credentialPath(grantID string) (string, error) {
	if !grantIDPattern.MatchString(grantID) {
		return "", fmt.Errorf("credential for grant %q: not a grant ID", grantID)
	}
	return filepath.Join(l.dir, CredentialsDirName, grantID+".age"), nil
}

// PutCredential writes .jitform/credentials/<grant-id>.age (0600) atomically.
func (l *Local) PutCredential(ctx context.Context, grantID string, ciphertext []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.credentialPath(grantID)
	if err != nil {
		return err
	}
	if err := l.ensureDir(); err != nil {
		return fmt.Errorf("store credential for %s: %w", grantID, err)
	}
	dir := filepath.Dir(p)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store credential for %s: %w", grantID, err)
	}
	if err := writeFileAtomic(p, ciphertext, 0o600, nil); err != nil {
		return fmt.Errorf("store credential for %s: %w", grantID, err)
	}
	return nil
}

// GetCredential reads the grant's ciphertext.
func (l *Local) GetCredential(ctx context.Context, grantID string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.credentialPath(grantID)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("credential for grant %s: %w", grantID, ErrNoCredential)
	}
	if err != nil {
		return nil, fmt.Errorf("read credential for %s: %w", grantID, err)
	}
	return b, nil
}

// DeleteCredential removes the grant's file and makes the removal durable.
func (l *Local) DeleteCredential(ctx context.Context, grantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.credentialPath(grantID)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete credential for %s: %w", grantID, err)
	}
	return syncDir(filepath.Dir(p))
}
