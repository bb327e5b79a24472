package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

var _ PlanReader = (*Postgres)(nil)

// pgSnapshotCandidates is how many of the latest snapshot rows a plan tries
// before it falls back to the full read.
const pgSnapshotCandidates = 3

// pgLedgerStateSQL is the ledger table's identity and edit count, from the
// server's catalog and statistics: its file node (a rewrite such as
// VACUUM FULL or ALTER TABLE … TYPE changes it), the rows ever updated or
// deleted in it (counted whatever the triggers, also for superusers), and
// how many of its own triggers are not enabled now.
const pgLedgerStateSQL = `SELECT pg_relation_filenode(c.oid)::text
	|| '/' || (coalesce(pg_stat_get_tuples_updated(c.oid), 0) + coalesce(pg_stat_get_tuples_deleted(c.oid), 0))::text
	|| '/' || (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'O')::text
	FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass`

// ledgerState reads pgLedgerStateSQL.
func (p *Postgres) ledgerState(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var st string
	if err := pool.QueryRow(ctx, pgLedgerStateSQL, p.ident("ledger")).Scan(&st); err != nil {
		return "", p.redact(fmt.Errorf("read the PostgreSQL ledger's statistics: %w", err))
	}
	return st, nil
}

// prefixChain extends the running digest from (hex, "" at the start) over
// lines: d = SHA-256(d ‖ line) for each line in order.
func prefixChain(from string, lines [][]byte) string {
	d, _ := hex.DecodeString(from)
	h := sha256.New()
	for _, l := range lines {
		h.Reset()
		h.Write(d)
		h.Write(l)
		d = h.Sum(d[:0])
	}
	return hex.EncodeToString(d)
}

// PlanEvents returns what the planner replays (the snapshot's kept events,
// then every event after it; CompactForReplay of them is CompactForReplay
// of the verified ledger) and the ledger's head, as the local backend's
// PlanEvents does. It takes the latest snapshot row whose kept lines
// re-verify (canonical form, each line's own hash, seqs rising up to the
// checkpoint) and whose ledger_state is the ledger table's now (no row
// updated or deleted, no table rewrite, every trigger enabled since the
// snapshot's rows were verified); it checks that every kept line is, byte
// for byte, the ledger's row of that seq, and that the checkpoint row is
// still that event with that hash; then it reads and verifies only the
// rows after it, chained from its hash. Any mismatch, or no snapshot,
// falls back to Events (which names the fault, and writes a snapshot). A
// tail of snapshotRefresh events or more writes a new one.
func (p *Postgres) PlanEvents(ctx context.Context) ([]Event, string, error) {
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return nil, "", err
	}
	// Snapshots only save work: any failure to use them (a runner role
	// granted before schema version 4 may not read the table) falls back to
	// the full read, which reports a server it cannot reach on its own.
	if events, head, ok, err := p.planFromSnapshot(ctx, pool); err == nil && ok {
		return events, head, nil
	} else if cerr := ctx.Err(); cerr != nil {
		return nil, "", cerr
	}
	events, err := p.Events(ctx)
	if err != nil {
		return nil, "", err
	}
	return CompactForReplay(events), Head(events), nil
}

// pgSnapshot is one row of SCHEMA.snapshots, its kept lines verified.
type pgSnapshot struct {
	seq    int64
	hash   string
	prefix string
	state  string
	lines  [][]byte
	kept   []Event
}

// planFromSnapshot is PlanEvents' fast path; ok is false when no snapshot
// can be used. err is only a failure to talk to the server.
func (p *Postgres) planFromSnapshot(ctx context.Context, pool *pgxpool.Pool) ([]Event, string, bool, error) {
	state, err := p.ledgerState(ctx, pool)
	if err != nil {
		return nil, "", false, err
	}
	snaps, err := p.readSnapshots(ctx, pool, pgSnapshotCandidates)
	if err != nil {
		return nil, "", false, err
	}
	for _, s := range snaps {
		if s.state != state {
			continue
		}
		if ok, err := p.keptAreLedgerRows(ctx, pool, s); err != nil || !ok {
			return nil, "", false, err
		}
		// The checkpoint row, then the tail.
		lines, err := p.readFrom(ctx, pool, s.seq)
		if err != nil {
			return nil, "", false, err
		}
		if len(lines) == 0 {
			continue
		}
		own, cerr := parseLine(lines[0], s.seq, int(s.seq))
		if cerr != nil || own.Seq != s.seq || own.Hash != s.hash || !storedHashOK(own, lines[0]) {
			continue
		}
		tail, cerr := parseLines(lines[1:], s.seq, s.hash)
		if cerr != nil {
			return nil, "", false, nil // the full read names it
		}
		events := append(s.kept, tail...)
		last := Checkpoint{Seq: s.seq, Hash: s.hash}
		if len(tail) > 0 {
			last = Checkpoint{Seq: tail[len(tail)-1].Seq, Hash: tail[len(tail)-1].Hash}
		}
		if len(tail) >= snapshotRefresh {
			events = CompactForReplay(events)
			p.insertSnapshot(ctx, pool, events, last, prefixChain(s.prefix, lines[1:]), state)
		}
		return events, last.Hash, true, nil
	}
	return nil, "", false, nil
}

// readSnapshots returns up to n of the latest snapshot rows of this format
// whose kept lines verify on their own, newest first.
func (p *Postgres) readSnapshots(ctx context.Context, pool *pgxpool.Pool, n int) ([]pgSnapshot, error) {
	rows, err := pool.Query(ctx, "SELECT seq, hash, prefix_sha256, ledger_state, events FROM "+p.ident("snapshots")+
		" WHERE format = $1 ORDER BY seq DESC, created_at DESC LIMIT $2", snapshotFormat, n)
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger snapshots: %w", err))
	}
	defer rows.Close()
	var out []pgSnapshot
	for rows.Next() {
		var s pgSnapshot
		var body string
		if err := rows.Scan(&s.seq, &s.hash, &s.prefix, &s.state, &body); err != nil {
			return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger snapshots: %w", err))
		}
		if s.verifyKept(body) {
			out = append(out, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger snapshots: %w", err))
	}
	return out, nil
}

// verifyKept parses and checks the kept lines: canonical, own hash right,
// seqs rising and not past the checkpoint.
func (s *pgSnapshot) verifyKept(body string) bool {
	if s.seq < 1 || len(s.prefix) != 2*sha256.Size {
		return false
	}
	if body != "" {
		s.lines = bytes.Split([]byte(body), []byte{'\n'})
	}
	var prev int64
	for _, raw := range s.lines {
		e, cerr := parseLine(raw, prev+1, 0)
		if cerr != nil || e.Seq <= prev || e.Seq > s.seq || !storedHashOK(e, raw) {
			return false
		}
		prev = e.Seq
		s.kept = append(s.kept, e)
	}
	return true
}

// keptAreLedgerRows: every kept line is the ledger's row of its seq, byte
// for byte (the server compares SHA-256 digests, through the primary key).
func (p *Postgres) keptAreLedgerRows(ctx context.Context, pool *pgxpool.Pool, s pgSnapshot) (bool, error) {
	if len(s.kept) == 0 {
		return true, nil
	}
	seqs := make([]int64, len(s.kept))
	sums := make([][]byte, len(s.kept))
	for i, e := range s.kept {
		seqs[i] = e.Seq
		d := sha256.Sum256(s.lines[i])
		sums[i] = d[:]
	}
	var same int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM `+p.ident("ledger")+` l
		JOIN unnest($1::bigint[], $2::bytea[]) AS k(seq, digest) ON l.seq = k.seq
		WHERE sha256(convert_to(l.line, 'UTF8')) = k.digest`, seqs, sums).Scan(&same)
	if err != nil {
		return false, p.redact(fmt.Errorf("check the PostgreSQL ledger snapshot at event %d: %w", s.seq, err))
	}
	return same == len(s.kept), nil
}

// readFrom returns the lines of the rows from seq on, in order.
func (p *Postgres) readFrom(ctx context.Context, pool *pgxpool.Pool, from int64) ([][]byte, error) {
	rows, err := pool.Query(ctx, "SELECT line FROM "+p.ident("ledger")+" WHERE seq >= $1 ORDER BY seq", from)
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger from event %d: %w", from, err))
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger from event %d: %w", from, err))
		}
		out = append(out, []byte(line))
	}
	if err := rows.Err(); err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger from event %d: %w", from, err))
	}
	return out, nil
}

// checkSnapshots is the full read's proof of the plan snapshots. Every
// one of the latest rows whose kept lines verify and whose checkpoint event
// is in the (verified) ledger with its hash — a row a plan may use — must
// hold exactly what CompactForReplay derives from the ledger up to that
// event, and the running digest of the ledger's lines up to it, or the
// read fails naming it. Other rows (garbled,
// of another format, of another history) are ignored: no plan uses them.
// When no row is within snapshotRefresh events of the head, it records one
// at the head with state, the ledger_state taken before the rows were
// read (none when state is ""): best effort, a role that may not insert
// only keeps plans on the full read.
func (p *Postgres) checkSnapshots(ctx context.Context, events []Event, data []byte, state string) error {
	if len(events) == 0 {
		return nil
	}
	pool, err := p.getPool(ctx)
	if err != nil {
		return err
	}
	lines, tornAt := splitLines(data)
	if tornAt >= 0 || len(lines) != len(events) {
		return nil
	}
	snaps, err := p.readSnapshots(ctx, pool, pgSnapshotCandidates)
	if err != nil {
		return nil // no access to the snapshots: plans read everything
	}
	// The running prefix digest, computed once up to each row's seq.
	var at int64
	prefix := ""
	var latest int64
	for i := len(snaps) - 1; i >= 0; i-- { // oldest first
		s := snaps[i]
		if s.seq > int64(len(events)) || events[s.seq-1].Hash != s.hash {
			continue
		}
		if s.seq >= at {
			prefix = prefixChain(prefix, lines[at:s.seq])
			at = s.seq
		} else {
			continue // an equal seq was handled, a lower one cannot follow
		}
		want := CompactForReplay(events[:s.seq])
		same := prefix == s.prefix && len(want) == len(s.kept)
		for i := 0; same && i < len(want); i++ {
			same = want[i].Hash == s.kept[i].Hash // both verified: same hash, same event
		}
		if !same {
			return &ChainError{Seq: s.seq, Line: int(s.seq), Reason: fmt.Sprintf(
				"the plan snapshot at this event (table %s, seq %d), the verified summary of the ledger that plans read instead of the whole ledger, does not match the ledger: it was written outside jitform. "+
					"Have the schema owner delete that row (ALTER TABLE %[1]s DISABLE TRIGGER snapshots_append_only first); the next plan rebuilds it from the verified ledger",
				p.ident("snapshots"), s.seq)}
		}
		if s.state == state {
			latest = max(latest, s.seq)
		}
	}
	head := events[len(events)-1]
	if state == "" || latest > 0 && head.Seq-latest < snapshotRefresh {
		return nil
	}
	p.insertSnapshot(ctx, pool, CompactForReplay(events), Checkpoint{Seq: head.Seq, Hash: head.Hash}, prefixChain(prefix, lines[at:]), state)
	return nil
}

func (p *Postgres) insertSnapshot(ctx context.Context, pool *pgxpool.Pool, compact []Event, at Checkpoint, prefix, state string) {
	var b strings.Builder
	for i, e := range compact {
		line, err := EncodeEvent(e)
		if err != nil {
			return
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.Write(line)
	}
	_, _ = pool.Exec(ctx, "INSERT INTO "+p.ident("snapshots")+" (seq, format, hash, prefix_sha256, ledger_state, events) VALUES ($1, $2, $3, $4, $5, $6)",
		at.Seq, snapshotFormat, at.Hash, prefix, state, b.String())
}
