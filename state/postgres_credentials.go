package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL CredentialStore: table <schema>.credentials (migration
// 0003), one row per grant: grant_id, ciphertext (age-encrypted before it
// gets here), created_at. The runner role needs SELECT, INSERT and DELETE on
// this table only (docs/state-postgres.md); a replacement is a delete and an
// insert in one transaction, so no UPDATE is needed.

var _ CredentialStore = (*Postgres)(nil)

// PutCredential stores (or replaces) the grant's ciphertext; it is durable
// when the transaction commits.
func (p *Postgres) PutCredential(ctx context.Context, grantID string, ciphertext []byte) error {
	if !grantIDPattern.MatchString(grantID) {
		return fmt.Errorf("credential for grant %q: not a grant ID", grantID)
	}
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+p.ident("credentials")+" WHERE grant_id = $1", grantID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+p.ident("credentials")+" (grant_id, ciphertext) VALUES ($1, $2)", grantID, ciphertext)
		return err
	})
	if err != nil {
		return p.redact(fmt.Errorf("store credential for %s in the PostgreSQL state at %s: %w", grantID, p.Where(), err))
	}
	return nil
}

// GetCredential returns the grant's ciphertext, or an error wrapping
// ErrNoCredential.
func (p *Postgres) GetCredential(ctx context.Context, grantID string) ([]byte, error) {
	if !grantIDPattern.MatchString(grantID) {
		return nil, fmt.Errorf("credential for grant %q: not a grant ID", grantID)
	}
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return nil, err
	}
	var ct []byte
	err = pool.QueryRow(ctx, "SELECT ciphertext FROM "+p.ident("credentials")+" WHERE grant_id = $1", grantID).Scan(&ct)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("credential for grant %s: %w", grantID, ErrNoCredential)
	}
	if err != nil {
		return nil, p.redact(fmt.Errorf("read credential for %s from the PostgreSQL state at %s: %w", grantID, p.Where(), err))
	}
	return ct, nil
}

// DeleteCredential removes the grant's row; none is no error.
func (p *Postgres) DeleteCredential(ctx context.Context, grantID string) error {
	if !grantIDPattern.MatchString(grantID) {
		return fmt.Errorf("credential for grant %q: not a grant ID", grantID)
	}
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "DELETE FROM "+p.ident("credentials")+" WHERE grant_id = $1", grantID); err != nil {
		return p.redact(fmt.Errorf("delete credential for %s from the PostgreSQL state at %s: %w", grantID, p.Where(), err))
	}
	return nil
}
