package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema migrations, applied in order by Migrate (`jitform init`).
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// DefaultPostgresSchema is where the ledger lives unless the config says
// otherwise: table jitform.ledger.
const DefaultPostgresSchema = "jitform"

// PostgresConfig selects a PostgreSQL state.
type PostgresConfig struct {
	// URL is a libpq connection string (postgres://... or key=value). It
	// may hold a password: it is never printed, and every error this
	// backend returns has it removed.
	URL string
	// Schema holds the tables (default "jitform").
	Schema string
	// CAFile is a PEM bundle that verifies the server certificate (sslrootcert),
	// when the URL does not name one.
	CAFile string
}

// Postgres keeps the ledger and the locks in PostgreSQL: table
// SCHEMA.ledger, one row per event holding the event's canonical line, so
// the chain is the local backend's byte for byte. Appends are serialised
// by a transaction-level advisory lock and checked by a trigger (each row
// must extend the head; seq is the primary key), so the chain can never
// fork. Locks are session-level advisory locks: a holder that dies loses
// them with its session.
type Postgres struct {
	schema   string // validated identifier
	connStr  string // secret
	poolCfg  *pgxpool.Config
	password string // for redaction
	now      func() time.Time

	mu     sync.Mutex
	pool   *pgxpool.Pool
	ready  bool // schema version checked
	closed bool
	// While Watch runs, the seqs this value appended: their notifications
	// are not changes made by someone else.
	watching bool
	ownSeqs  map[int64]bool

	// fullReads counts the whole-ledger reads (Lines), for tests.
	fullReads atomic.Int64

	// beforeCommit, set only by tests, runs inside an append transaction
	// after its rows are inserted and before COMMIT, with that session's pid.
	beforeCommit func(attempt int, backendPID uint32)
}

var _ Backend = (*Postgres)(nil)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidPostgresSchema reports whether s can name the schema: lower-case
// letters, digits and underscores, not starting with a digit, at most 63.
func ValidPostgresSchema(s string) bool { return schemaName.MatchString(s) }

// NewPostgres checks the settings; it connects on first use. TLS is
// verified (sslmode=verify-full) unless the URL sets sslmode itself.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.Schema == "" {
		cfg.Schema = DefaultPostgresSchema
	}
	if !ValidPostgresSchema(cfg.Schema) {
		return nil, fmt.Errorf("PostgreSQL state: schema %q is not a valid name (lower-case letters, digits and _, at most 63, not starting with a digit)", cfg.Schema)
	}
	connStr, password, err := tlsDefaults(cfg.URL, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	p := &Postgres{schema: cfg.Schema, connStr: connStr, password: password, now: time.Now}
	poolCfg, err := pgxpool.ParseConfig(connStr)
	if err != nil {
		return nil, p.redact(fmt.Errorf("PostgreSQL state: the url is not a valid connection string: %w", err))
	}
	if password == "" {
		password = poolCfg.ConnConfig.Password
		p.password = password
	}
	poolCfg.MaxConns = 4
	if poolCfg.ConnConfig.RuntimeParams == nil {
		poolCfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := poolCfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		poolCfg.ConnConfig.RuntimeParams["application_name"] = "jitform"
	}
	p.poolCfg = poolCfg
	return p, nil
}

// tlsDefaults adds sslmode=verify-full (unless the URL sets sslmode) and
// sslrootcert=caFile (unless the URL names one), and returns the password
// found in the URL (for redaction).
func tlsDefaults(connStr, caFile string) (string, string, error) {
	if strings.TrimSpace(connStr) == "" {
		return "", "", errors.New("PostgreSQL state: url is empty (set it, e.g. url = env(\"JITFORM_STATE_URL\"))")
	}
	if strings.HasPrefix(connStr, "postgres://") || strings.HasPrefix(connStr, "postgresql://") {
		u, err := url.Parse(connStr)
		if err != nil {
			// url.Parse quotes the input in its error: never show it.
			return "", "", errors.New("PostgreSQL state: url is not a valid postgres:// URL")
		}
		pw, _ := u.User.Password()
		q := u.Query()
		if q.Get("sslmode") == "" && os.Getenv("PGSSLMODE") == "" {
			q.Set("sslmode", "verify-full")
		}
		if caFile != "" && q.Get("sslrootcert") == "" {
			q.Set("sslrootcert", caFile)
		}
		u.RawQuery = q.Encode()
		return u.String(), pw, nil
	}
	// key=value form.
	pw := ""
	if m := regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`).FindStringSubmatch(connStr); m != nil {
		pw = strings.Trim(m[1], "'")
	}
	if !regexp.MustCompile(`(?:^|\s)sslmode\s*=`).MatchString(connStr) && os.Getenv("PGSSLMODE") == "" {
		connStr += " sslmode=verify-full"
	}
	if caFile != "" && !regexp.MustCompile(`(?:^|\s)sslrootcert\s*=`).MatchString(connStr) {
		connStr += " sslrootcert='" + strings.ReplaceAll(strings.ReplaceAll(caFile, `\`, `\\`), `'`, `\'`) + "'"
	}
	return connStr, pw, nil
}

// redactedError is an error whose message had the connection password
// removed; errors.As still finds the error types inside.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact removes the password (and the whole connection string) from an
// error's message.
func (p *Postgres) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	scrubbed := msg
	if p.connStr != "" {
		scrubbed = strings.ReplaceAll(scrubbed, p.connStr, "(the state url)")
	}
	if len(p.password) > 0 {
		scrubbed = strings.ReplaceAll(scrubbed, p.password, "(sensitive)")
		if esc := url.QueryEscape(p.password); esc != p.password {
			scrubbed = strings.ReplaceAll(scrubbed, esc, "(sensitive)")
		}
		if esc := url.PathEscape(p.password); esc != p.password {
			scrubbed = strings.ReplaceAll(scrubbed, esc, "(sensitive)")
		}
	}
	if scrubbed == msg {
		return err
	}
	return &redactedError{msg: scrubbed, err: err}
}

// Schema is the schema holding the tables.
func (p *Postgres) Schema() string { return p.schema }

// Where says which database holds the state, without credentials:
// postgres://user@host:port/db, schema S.
func (p *Postgres) Where() string {
	c := p.poolCfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s:%d/%s (schema %s)", c.User, c.Host, c.Port, c.Database, p.schema)
}

// Close closes the connections.
func (p *Postgres) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pool != nil {
		p.pool.Close()
		p.pool = nil
	}
	p.closed = true
}

func (p *Postgres) ident(name string) string {
	return pgx.Identifier{p.schema, name}.Sanitize()
}

// Channel is the LISTEN channel every append notifies.
func (p *Postgres) Channel() string { return "jitform_ledger_" + p.schema }

// getPool connects on first use.
func (p *Postgres) getPool(ctx context.Context) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("PostgreSQL state: closed")
	}
	if p.pool == nil {
		pool, err := pgxpool.NewWithConfig(ctx, p.poolCfg)
		if err != nil {
			return nil, p.redact(fmt.Errorf("connect to the PostgreSQL state at %s: %w", p.Where(), err))
		}
		p.pool = pool
	}
	return p.pool, nil
}

// migration is one embedded migration file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in order.
func migrations() []migration {
	entries, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var out []migration
	for _, path := range entries {
		base := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("state: migration file " + base + " must be named NNNN_name.sql")
		}
		b, err := migrationFS.ReadFile(path)
		if err != nil {
			panic(err)
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

// PostgresSchemaVersion is the schema version this jitform creates and reads.
func PostgresSchemaVersion() int {
	m := migrations()
	return m[len(m)-1].version
}

// SchemaVersionError is a schema this jitform cannot use: missing, older
// (run `jitform init`) or newer (upgrade jitform).
type SchemaVersionError struct {
	Schema    string
	Found     int // 0: not created
	Supported int
}

func (e *SchemaVersionError) Error() string {
	switch {
	case e.Found == 0:
		return fmt.Sprintf("the PostgreSQL state has no jitform schema %q (or this role cannot read it): run `jitform init` once, as a role that may create it (see docs/state-postgres.md)", e.Schema)
	case e.Found < e.Supported:
		return fmt.Sprintf("the PostgreSQL state schema %q is at version %d, older than this jitform's %d: run `jitform init` to upgrade it", e.Schema, e.Found, e.Supported)
	default:
		return fmt.Sprintf("the PostgreSQL state schema %q is at version %d, newer than this jitform understands (%d): upgrade jitform; this binary refuses to read or write it", e.Schema, e.Found, e.Supported)
	}
}

// schemaVersion reads the applied version (0 when the schema is absent).
func (p *Postgres) schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", p.ident("schema_version")).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+p.ident("schema_version")).Scan(&v); err != nil {
		return 0, err
	}
	return v, nil
}

// ready checks once that the schema is at this binary's version.
func (p *Postgres) ensureReady(ctx context.Context) (*pgxpool.Pool, error) {
	pool, err := p.getPool(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	ok := p.ready
	p.mu.Unlock()
	if ok {
		return pool, nil
	}
	v, err := p.schemaVersion(ctx, pool)
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL state schema version at %s: %w", p.Where(), err))
	}
	if want := PostgresSchemaVersion(); v != want {
		return nil, &SchemaVersionError{Schema: p.schema, Found: v, Supported: want}
	}
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
	return pool, nil
}

// Migrate creates or upgrades the schema to this binary's version, in one
// transaction under an advisory lock (two inits at once are serialised).
// It refuses a schema newer than this binary. It returns the versions
// before and after.
func (p *Postgres) Migrate(ctx context.Context) (from, to int, err error) {
	pool, err := p.getPool(ctx)
	if err != nil {
		return 0, 0, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", p.lockKey("migrate")); err != nil {
			return err
		}
		if from, err = p.schemaVersion(ctx, tx); err != nil {
			return err
		}
		all := migrations()
		to = all[len(all)-1].version
		if from > to {
			return &SchemaVersionError{Schema: p.schema, Found: from, Supported: to}
		}
		if from == 0 {
			// A schema the DBA made beforehand (granting CREATE on it) is
			// used as it is: creating one needs CREATE on the database.
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", p.schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{p.schema}.Sanitize()); err != nil {
					return fmt.Errorf("create schema %s: %w", p.schema, err)
				}
			}
			if _, err := tx.Exec(ctx, "CREATE TABLE "+p.ident("schema_version")+
				" (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
				return fmt.Errorf("create table schema_version: %w", err)
			}
		}
		r := strings.NewReplacer("{{schema}}", pgx.Identifier{p.schema}.Sanitize(), "{{channel}}", p.Channel())
		for _, m := range all {
			if m.version <= from {
				continue
			}
			if _, err := tx.Exec(ctx, r.Replace(m.sql)); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+p.ident("schema_version")+" (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		var sv *SchemaVersionError
		if errors.As(err, &sv) {
			return from, from, err
		}
		return from, from, p.redact(fmt.Errorf("create or upgrade the PostgreSQL state schema %s at %s: %w", p.schema, p.Where(), err))
	}
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
	return from, to, nil
}

// Events reads and verifies the whole ledger, exactly as the local backend
// verifies ledger.jsonl: every row's line must be the canonical encoding
// of its event, the chain unbroken from seq 1; and the latest plan
// snapshot must match it (see checkSnapshots), which records a new one when
// it is snapshotRefresh or more events behind.
func (p *Postgres) Events(ctx context.Context) ([]Event, error) {
	// The ledger's edit count before its rows are read: a snapshot of
	// them is usable only until a row is updated or deleted.
	var state string
	if pool, err := p.ensureReady(ctx); err == nil {
		state, _ = p.ledgerState(ctx, pool)
	}
	data, err := p.Lines(ctx)
	if err != nil {
		return nil, err
	}
	events, err := parseLedger(data, nil)
	if err != nil {
		return events, err
	}
	// A verified read proves the plan snapshot, or records one.
	if err := p.checkSnapshots(ctx, events, data, state); err != nil {
		return events, err
	}
	return events, nil
}

// Lines returns the ledger as stored: each row's line and a newline, in
// seq order. Written to .jitform/ledger.jsonl it is a local ledger.
func (p *Postgres) Lines(ctx context.Context) ([]byte, error) {
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return nil, err
	}
	p.fullReads.Add(1)
	rows, err := pool.Query(ctx, "SELECT seq, line FROM "+p.ident("ledger")+" ORDER BY seq")
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger: %w", err))
	}
	defer rows.Close()
	var buf bytes.Buffer
	var seq int64
	var line string
	for rows.Next() {
		if err := rows.Scan(&seq, &line); err != nil {
			return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger: %w", err))
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger: %w", err))
	}
	return buf.Bytes(), nil
}

// newBatchID is a random id for one Append.
func newBatchID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// lockKey maps a lock name to a 64-bit advisory lock key, distinct per schema.
func (p *Postgres) lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("jitform\x00" + p.schema + "\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// appendAttempts bounds the retries of an append whose connection failed.
const appendAttempts = 4

// Append adds events after the head in one transaction and returns once
// it is committed. If the connection fails, Append does not guess: it
// reconnects, waits for the append lock (which the old transaction holds
// until it has committed or aborted), and looks for its batch id. Found:
// the append committed, and those rows are returned. Not found: it did
// not, and it is done again on top of the current head.
func (p *Postgres) Append(ctx context.Context, events ...Event) ([]Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return nil, err
	}
	batch := newBatchID()
	var lastErr error
	unknown := false
	for attempt := 1; attempt <= appendAttempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return nil, p.redact(fmt.Errorf("append to the PostgreSQL ledger (batch %s, outcome of the last attempt unknown): %w (after: %v)", batch, ctx.Err(), lastErr))
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		out, checked, err := p.appendOnce(ctx, pool, batch, attempt, events)
		if err == nil {
			return out, nil
		}
		// Unknown: some attempt may have committed. A batch check clears
		// what came before; a failure after sending anything sets it.
		unknown = (unknown && !checked) || !notSent(err)
		if !connectionLost(ctx, err) {
			if unknown {
				return nil, p.redact(fmt.Errorf("%w (an earlier attempt of batch %s may have committed: the next read of the ledger shows it)", err, batch))
			}
			return nil, p.redact(err)
		}
		lastErr = err
	}
	if !unknown {
		return nil, p.redact(fmt.Errorf("append to the PostgreSQL ledger: the database could not be reached (%d attempts); nothing was written: %w", appendAttempts, lastErr))
	}
	return nil, p.redact(fmt.Errorf("append to the PostgreSQL ledger: the connection failed %d times, so whether the last attempt committed could not be found out; "+
		"its rows carry batch id %s (see table %s.ledger, column batch) and the next command that reads the ledger sees them if it did: %w", appendAttempts, batch, p.schema, lastErr))
}

// connectionLost reports whether err is a failure of the connection (the
// transaction's fate unknown), as opposed to an error the server returned.
func connectionLost(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var ce *ChainError
	if errors.As(err, &ce) {
		return false
	}
	var sv *SchemaVersionError
	if errors.As(err, &sv) {
		return false
	}
	var prep *prepareError
	return !errors.As(err, &prep)
}

type prepareError struct{ err error }

func (e *prepareError) Error() string { return e.err.Error() }
func (e *prepareError) Unwrap() error { return e.err }

// notSent reports whether err happened before anything of the transaction
// reached the server (it cannot have committed).
func notSent(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err)
}

// appendOnce is one attempt. checked is true once it has looked for the
// batch (so earlier attempts are known not to have committed).
func (p *Postgres) appendOnce(ctx context.Context, pool *pgxpool.Pool, batch string, attempt int, events []Event) (out []Event, checked bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", p.lockKey("append")); err != nil {
			return fmt.Errorf("take the append lock: %w", err)
		}
		// A long-running process (run) checks again on every write: the
		// schema may have been upgraded by a newer jitform meanwhile.
		if v, err := p.schemaVersion(ctx, tx); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		} else if want := PostgresSchemaVersion(); v != want {
			return &SchemaVersionError{Schema: p.schema, Found: v, Supported: want}
		}
		if attempt > 1 {
			// An earlier attempt's transaction has ended (it held the
			// lock until then): did it commit?
			found, err := p.batchEvents(ctx, tx, batch)
			if err != nil {
				return err
			}
			checked = true
			if len(found) > 0 {
				out = found
				return nil
			}
		}
		var lastSeq int64
		var lastLine string
		err := tx.QueryRow(ctx, "SELECT seq, line FROM "+p.ident("ledger")+" ORDER BY seq DESC LIMIT 1").Scan(&lastSeq, &lastLine)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read the ledger head: %w", err)
		}
		prev := ""
		if lastSeq > 0 {
			last, cerr := parseLine([]byte(lastLine), lastSeq, int(lastSeq))
			if cerr != nil {
				return cerr
			}
			if !storedHashOK(last, []byte(lastLine)) {
				return &ChainError{Seq: lastSeq, Line: int(lastSeq), Reason: "the last event's hash does not match its content: it was edited; run `jitform ledger verify`"}
			}
			prev = last.Hash
		}
		now := p.now()
		b := &pgx.Batch{}
		stored := make([]Event, 0, len(events))
		seq := lastSeq
		for _, e := range events {
			seq++
			se, line, err := prepareEvent(e, seq, prev, now)
			if err != nil {
				return &prepareError{fmt.Errorf("append to ledger: %w", err)}
			}
			b.Queue("INSERT INTO "+p.ident("ledger")+" (seq, prev, hash, line, batch) VALUES ($1, $2, $3, $4, $5)",
				se.Seq, se.Prev, se.Hash, string(line), batch)
			stored = append(stored, se)
			prev = se.Hash
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		if p.beforeCommit != nil {
			p.beforeCommit(attempt, tx.Conn().PgConn().PID())
		}
		out = stored
		// Before COMMIT, so Watch knows the notification is ours when it comes.
		p.recordOwn(stored, true)
		return nil
	})
	if err != nil {
		p.recordOwn(out, false)
		var ce *ChainError
		if errors.As(err, &ce) {
			return nil, checked, err
		}
		return nil, checked, fmt.Errorf("append to the PostgreSQL ledger (batch %s): %w", batch, err)
	}
	return out, checked, nil
}

// batchEvents returns the events an append with this batch id stored.
func (p *Postgres) batchEvents(ctx context.Context, tx pgx.Tx, batch string) ([]Event, error) {
	rows, err := tx.Query(ctx, "SELECT seq, line FROM "+p.ident("ledger")+" WHERE batch = $1 ORDER BY seq", batch)
	if err != nil {
		return nil, fmt.Errorf("look for batch %s: %w", batch, err)
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		seq  int64
		line string
	}, error) {
		var v struct {
			seq  int64
			line string
		}
		return v, r.Scan(&v.seq, &v.line)
	})
	if err != nil {
		return nil, fmt.Errorf("look for batch %s: %w", batch, err)
	}
	out := make([]Event, 0, len(lines))
	for _, l := range lines {
		e, cerr := parseLine([]byte(l.line), l.seq, int(l.seq))
		if cerr != nil {
			return nil, cerr
		}
		out = append(out, e)
	}
	return out, nil
}

// Import copies a verified ledger into an empty PostgreSQL ledger,
// keeping every seq, prev and hash (`jitform state push`). A non-empty
// ledger is refused: nothing is merged or overwritten.
func (p *Postgres) Import(ctx context.Context, events []Event) error {
	if err := Verify(events); err != nil {
		return fmt.Errorf("the local ledger fails verification, nothing was copied: %w", err)
	}
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return err
	}
	batch := newBatchID()
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", p.lockKey("append")); err != nil {
			return fmt.Errorf("take the append lock: %w", err)
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+p.ident("ledger")).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("the PostgreSQL ledger already holds %d event(s): push copies only into an empty ledger, nothing was copied", n)
		}
		b := &pgx.Batch{}
		for _, e := range events {
			line, err := EncodeEvent(e)
			if err != nil {
				return err
			}
			b.Queue("INSERT INTO "+p.ident("ledger")+" (seq, prev, hash, line, batch) VALUES ($1, $2, $3, $4, $5)",
				e.Seq, e.Prev, e.Hash, string(line), batch)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return p.redact(fmt.Errorf("copy the ledger into PostgreSQL: %w", err))
	}
	return nil
}

// Lock takes the state lock. See LockNames.
func (p *Postgres) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (func() error, error) {
	return p.LockNames(ctx, []string{"state"}, info, timeout)
}

// LockNamed takes one named lock. See LockNames.
func (p *Postgres) LockNamed(ctx context.Context, name string, info LockInfo, timeout time.Duration) (func() error, error) {
	return p.LockNames(ctx, []string{name}, info, timeout)
}

// LockNames takes the advisory locks for names (one per target, so that
// applies to different targets run side by side) on a session of its own,
// in sorted order so two callers never deadlock, polling each until it is
// free, timeout passes or ctx is done. info is recorded in SCHEMA.locks
// first, so a waiter can name the holder. PostgreSQL frees the locks when
// the session ends, so a holder killed with -9 or cut off the network never
// wedges them. The returned function releases them all.
func (p *Postgres) LockNames(ctx context.Context, names []string, info LockInfo, timeout time.Duration) (func() error, error) {
	if _, err := p.ensureReady(ctx); err != nil {
		return nil, err
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	if len(names) == 0 {
		return func() error { return nil }, nil
	}
	what := func(name string) string { return fmt.Sprintf("postgres lock %q in schema %s", name, p.schema) }
	conn, err := pgx.ConnectConfig(ctx, p.poolCfg.ConnConfig.Copy())
	if err != nil {
		return nil, p.redact(fmt.Errorf("take the %s: connect: %w", what(names[0]), err))
	}
	fail := func(err error) (func() error, error) {
		conn.Close(context.Background())
		return nil, p.redact(err)
	}
	if info.Since.IsZero() {
		info.Since = time.Now().UTC()
	}
	_, err = conn.Exec(ctx, "INSERT INTO "+p.ident("locks")+` (backend_pid, names, operation, who, pid, since)
		VALUES (pg_backend_pid(), $1, $2, $3, $4, $5)
		ON CONFLICT (backend_pid) DO UPDATE SET names = EXCLUDED.names, operation = EXCLUDED.operation,
			who = EXCLUDED.who, pid = EXCLUDED.pid, since = EXCLUDED.since`,
		strings.Join(names, " "), info.Operation, info.Who, info.PID, info.Since)
	if err != nil {
		return fail(fmt.Errorf("record the holder of the %s: %w", what(names[0]), err))
	}
	start := time.Now()
	for _, name := range names {
		key := p.lockKey(name)
		delay := 10 * time.Millisecond
		for {
			var ok bool
			if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
				return fail(fmt.Errorf("take the %s: %w", what(name), err))
			}
			if ok {
				break
			}
			if ctx.Err() != nil {
				return fail(fmt.Errorf("take the %s: %w", what(name), ctx.Err()))
			}
			if time.Since(start) >= timeout {
				holder, _ := p.lockHolder(ctx, conn, key)
				conn.Close(context.Background())
				return nil, &PostgresLockError{LockError{Path: what(name), Holder: holder, Waited: time.Since(start)}}
			}
			select {
			case <-ctx.Done():
			case <-time.After(max(min(delay, timeout-time.Since(start)), 0)):
			}
			delay = min(delay*2, 250*time.Millisecond)
		}
	}
	var once sync.Once
	var rerr error
	return func() error {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, derr := conn.Exec(cctx, "DELETE FROM "+p.ident("locks")+" WHERE backend_pid = pg_backend_pid()")
			_, uerr := conn.Exec(cctx, "SELECT pg_advisory_unlock_all()")
			cerr := conn.Close(cctx)
			if err := errors.Join(derr, uerr, cerr); err != nil {
				// Closing the session frees the locks in any case.
				rerr = p.redact(fmt.Errorf("release the %s: %w", what(names[0]), err))
			}
		})
		return rerr
	}, nil
}

// PostgresLockError is a lock wait that timed out on the PostgreSQL
// backend; errors.As finds the *LockError inside.
type PostgresLockError struct{ LockError }

func (e *PostgresLockError) Error() string {
	msg := e.LockError.Error()
	if i := strings.Index(msg, ". A holder that crashed"); i >= 0 {
		msg = msg[:i]
	}
	return msg + ". A holder that dies (kill -9, lost network) releases the lock with its database session, so there is no stale lock to delete"
}

func (e *PostgresLockError) Unwrap() error { return &e.LockError }

// lockHolder names the session that holds the advisory lock key: the
// locks row of that very session (a row left by a dead one is ignored).
func (p *Postgres) lockHolder(ctx context.Context, conn *pgx.Conn, key int64) (LockInfo, error) {
	var info LockInfo
	var pid int32
	err := conn.QueryRow(ctx, `SELECT l.operation, l.who, l.pid, l.since
		FROM `+p.ident("locks")+` l
		WHERE l.backend_pid IN (
			SELECT k.pid FROM pg_catalog.pg_locks k
			WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
			  AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
			  AND k.classid = $1::bigint::oid AND k.objid = $2::bigint::oid)`,
		int64(uint32(uint64(key)>>32)), int64(uint32(uint64(key)))).Scan(&info.Operation, &info.Who, &pid, &info.Since)
	info.PID = int(pid)
	return info, err
}
