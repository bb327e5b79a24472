package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestClusterServesTLSAndSocket proves a started cluster answers over TLS
// verified against its CA, over its unix socket, refuses a wrong password,
// survives a restart on the same port, and is gone after its cleanup.
func TestClusterServesTLSAndSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dataDir string
	t.Run("cluster", func(t *testing.T) {
		c := Start(t)
		dataDir = filepath.Join(c.Dir, "data")
		conn, err := pgx.Connect(ctx, c.SuperURL("postgres"))
		if err != nil {
			t.Fatalf("connect over TLS: %v", err)
		}
		var ssl bool
		if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
			t.Fatalf("connection is not TLS: ssl=%v err=%v", ssl, err)
		}
		conn.Close(ctx)

		if _, err := pgx.Connect(ctx, c.URL(SuperUser, "wrong-password", "postgres")); err == nil {
			t.Fatal("a wrong password was accepted over TCP")
		}

		db := c.NewDatabase(t)
		sock, err := pgx.Connect(ctx, c.SocketURL(SuperUser, db))
		if err != nil {
			t.Fatalf("connect over the unix socket: %v", err)
		}
		var name string
		if err := sock.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil || name != db {
			t.Fatalf("current_database = %q, %v; want %q", name, err, db)
		}
		sock.Close(ctx)

		c.Restart(t)
		conn, err = pgx.Connect(ctx, c.SuperURL(db))
		if err != nil {
			t.Fatalf("connect after restart: %v", err)
		}
		conn.Close(ctx)
	})
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the cluster's directory %s survived its test: %v", dataDir, err)
	}
}

// TestMissingServerSkipsOrFails proves the switch between skipping and
// failing follows JITFORM_REQUIRE_SERVERS.
func TestMissingServerSkipsOrFails(t *testing.T) {
	for _, tc := range []struct {
		env     string
		skipped bool
		failed  bool
	}{{"", true, false}, {"1", false, true}} {
		t.Setenv("JITFORM_REQUIRE_SERVERS", tc.env)
		ft := &fakeTB{TB: t}
		func() {
			defer func() { recover() }()
			skipOrFail(ft, "PostgreSQL is not installed")
		}()
		if ft.skipped != tc.skipped || ft.failed != tc.failed {
			t.Errorf("JITFORM_REQUIRE_SERVERS=%q: skipped=%v failed=%v, want %v %v", tc.env, ft.skipped, ft.failed, tc.skipped, tc.failed)
		}
	}
}

type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = true; panic("skip") }
func (f *fakeTB) Fatal(args ...any) { f.failed = true; panic("fatal") }
