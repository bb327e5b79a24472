package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitform/jitform/internal/testbed/pgtest"
)

// TestPostgresCredentialStore: against a real PostgreSQL, as the
// documented least-privilege runner role: a ciphertext is stored, read
// back byte for byte, replaced, deleted (twice: none is no error), and a
// missing one is ErrNoCredential; a value that is not a grant ID never
// reaches the database; the runner cannot UPDATE the table nor touch it
// beyond the documented grants.
func TestPostgresCredentialStore(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, runnerGrants)
	runner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_runner", "runner-Pw-7731", db)})
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()

	ct1 := []byte("age-encryption.org/v1\n-> X25519 \x00\xff binary\n")
	ct2 := []byte("second ciphertext")
	if _, err := runner.GetCredential(ctx, "grant.alice"); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("get before put = %v, want ErrNoCredential", err)
	}
	if err := runner.PutCredential(ctx, "grant.alice", ct1); err != nil {
		t.Fatalf("the runner role cannot store a credential: %v", err)
	}
	if got, err := runner.GetCredential(ctx, "grant.alice"); err != nil || !bytes.Equal(got, ct1) {
		t.Fatalf("get = %q, %v; want the stored bytes", got, err)
	}
	if err := runner.PutCredential(ctx, "grant.alice", ct2); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if got, err := p.GetCredential(ctx, "grant.alice"); err != nil || !bytes.Equal(got, ct2) {
		t.Fatalf("after replace, another process reads %q, %v; want the new bytes", got, err)
	}
	if err := runner.PutCredential(ctx, "req-01J9", ct1); err != nil {
		t.Fatal(err)
	}
	if err := runner.DeleteCredential(ctx, "grant.alice"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := runner.DeleteCredential(ctx, "grant.alice"); err != nil {
		t.Fatalf("deleting a missing credential = %v, want no error", err)
	}
	if _, err := runner.GetCredential(ctx, "grant.alice"); !errors.Is(err, ErrNoCredential) {
		t.Errorf("get after delete = %v, want ErrNoCredential", err)
	}
	if got, err := runner.GetCredential(ctx, "req-01J9"); err != nil || !bytes.Equal(got, ct1) {
		t.Errorf("deleting one grant's credential touched another: %q, %v", got, err)
	}
	for _, bad := range []string{"../etc/passwd", "", "x' OR '1'='1", ".hidden"} {
		if err := runner.PutCredential(ctx, bad, ct1); err == nil {
			t.Errorf("PutCredential(%q) succeeded, want it refused as not a grant ID", bad)
		}
	}
	var n int
	if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM jitform.credentials").Scan(&n); err != nil || n != 1 {
		t.Errorf("credentials rows = %d, %v; want 1", n, err)
	}

	conn, err := pgx.Connect(ctx, c.URL("jitform_runner", "runner-Pw-7731", db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`UPDATE jitform.credentials SET ciphertext = '\x00'`,
		`TRUNCATE jitform.credentials`,
		`DROP TABLE jitform.credentials`,
	} {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "42809") {
			t.Errorf("runner: %q = %v, want insufficient privilege", stmt, err)
		}
	}
}
