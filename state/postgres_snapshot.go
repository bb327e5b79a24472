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

// pgPrefixSQL has the server compute the prefix digest of rows 1..$1: the
// SHA-256 of the concatenated SHA-256 digests of their lines in seq order
// (32 bytes a row are aggregated, not the lines themselves), the number of
// rows, and the checkpoint row's hash.
const pgPrefixSQL = `SELECT coalesce(encode(sha256(string_agg(sha256(convert_to(line, 'UTF8')), ''::bytea ORDER BY seq)), 'hex'), ''),
	count(*), coalesce(max(hash) FILTER (WHERE seq = $1), '')
	FROM %s WHERE seq <= $1`

// prefixDigest is what pgPrefixSQL computes, over lines held by the client.
func prefixDigest(lines [][]byte) string {
	all := make([]byte, 0, len(lines)*sha256.Size)
	for _, l := range lines {
		s := sha256.Sum256(l)
		all = append(all, s[:]...)
	}
	sum := sha256.Sum256(all)
	return hex.EncodeToString(sum[:])
}

// PlanEvents returns CompactForReplay of the verified ledger and its head,
// as the local backend's PlanEvents does. It takes the latest snapshot row
// whose kept lines re-verify (canonical form, each line's own hash, seqs
// rising up to the checkpoint) and whose checkpoint row still has the
// snapshot's hash; it has the server recompute the prefix digest of every
// row up to the checkpoint and check that each kept line is, byte for byte,
// the ledger's row of that seq; then it reads and verifies only the rows
// after the checkpoint, chained from its hash. Any mismatch, or no
// snapshot, falls back to Events (which names the fault) and then writes a
// snapshot. A tail of snapshotRefresh events or more writes a new one.
func (p *Postgres) PlanEvents(ctx context.Context) ([]Event, string, error) {
	pool, err := p.ensureReady(ctx)
	if err != nil {
		return nil, "", err
	}
	if events, head, ok, err := p.planFromSnapshot(ctx, pool); err != nil {
		return nil, "", err
	} else if ok {
		return events, head, nil
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
	lines  [][]byte
	kept   []Event
}

// planFromSnapshot is PlanEvents' fast path; ok is false when no snapshot
// can be used. err is only a failure to talk to the server.
func (p *Postgres) planFromSnapshot(ctx context.Context, pool *pgxpool.Pool) ([]Event, string, bool, error) {
	snaps, err := p.readSnapshots(ctx, pool, pgSnapshotCandidates)
	if err != nil {
		return nil, "", false, err
	}
	for _, s := range snaps {
		ok, err := p.checkSnapshotOnServer(ctx, pool, s)
		if err != nil {
			return nil, "", false, err
		}
		if !ok {
			continue
		}
		tail, err := p.readTail(ctx, pool, s.seq)
		if err != nil {
			return nil, "", false, err
		}
		parsed, cerr := parseLines(tail, s.seq, s.hash)
		if cerr != nil {
			return nil, "", false, nil // the full read names it
		}
		events := append(s.kept, parsed...)
		last := Checkpoint{Seq: s.seq, Hash: s.hash}
		if len(parsed) > 0 {
			last = Checkpoint{Seq: parsed[len(parsed)-1].Seq, Hash: parsed[len(parsed)-1].Hash}
		}
		if len(parsed) >= snapshotRefresh {
			events = CompactForReplay(events)
			p.writeSnapshotServerPrefix(ctx, pool, events, last)
		}
		return events, last.Hash, true, nil
	}
	return nil, "", false, nil
}

// readSnapshots returns up to n of the latest snapshot rows whose kept
// lines verify on their own, newest first.
func (p *Postgres) readSnapshots(ctx context.Context, pool *pgxpool.Pool, n int) ([]pgSnapshot, error) {
	rows, err := pool.Query(ctx, "SELECT seq, hash, prefix_sha256, events FROM "+p.ident("snapshots")+" WHERE format = $1 ORDER BY seq DESC, created_at DESC LIMIT $2", snapshotFormat, n)
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger snapshots: %w", err))
	}
	defer rows.Close()
	var out []pgSnapshot
	for rows.Next() {
		var s pgSnapshot
		var body string
		if err := rows.Scan(&s.seq, &s.hash, &s.prefix, &body); err != nil {
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
	if s.seq < 1 || len(s.prefix) != 64 {
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

// checkSnapshotOnServer: the checkpoint row has the snapshot's hash, the
// server's prefix digest of rows 1..seq is the snapshot's, and every kept
// line is the ledger's row of its seq.
func (p *Postgres) checkSnapshotOnServer(ctx context.Context, pool *pgxpool.Pool, s pgSnapshot) (bool, error) {
	var prefix, hash string
	var count int64
	if err := pool.QueryRow(ctx, fmt.Sprintf(pgPrefixSQL, p.ident("ledger")), s.seq).Scan(&prefix, &count, &hash); err != nil {
		return false, p.redact(fmt.Errorf("check the PostgreSQL ledger snapshot at event %d: %w", s.seq, err))
	}
	if count != s.seq || hash != s.hash || prefix != s.prefix {
		return false, nil
	}
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

// readTail returns the lines of the rows after seq, in order.
func (p *Postgres) readTail(ctx context.Context, pool *pgxpool.Pool, after int64) ([][]byte, error) {
	rows, err := pool.Query(ctx, "SELECT line FROM "+p.ident("ledger")+" WHERE seq > $1 ORDER BY seq", after)
	if err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger after event %d: %w", after, err))
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger after event %d: %w", after, err))
		}
		out = append(out, []byte(line))
	}
	if err := rows.Err(); err != nil {
		return nil, p.redact(fmt.Errorf("read the PostgreSQL ledger after event %d: %w", after, err))
	}
	return out, nil
}

// checkSnapshots is the full read's proof of the plan snapshots. Every
// one of the latest rows a plan could use (kept lines that verify, its
// checkpoint event in the verified ledger with its hash, the prefix digest
// of the ledger's lines up to it) must hold exactly what CompactForReplay
// derives from the ledger up to that event, or the read fails naming it.
// A row a plan cannot use (garbled, stale, another format) is ignored. When
// no usable row is within snapshotRefresh events of the head, it records
// one at the head: best effort, a role that may not insert only keeps plans
// on the full read.
func (p *Postgres) checkSnapshots(ctx context.Context, events []Event, data []byte) error {
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
	var latest int64
	for _, s := range snaps {
		if s.seq > int64(len(events)) || events[s.seq-1].Hash != s.hash || prefixDigest(lines[:s.seq]) != s.prefix {
			continue // a plan does not use it either
		}
		want := CompactForReplay(events[:s.seq])
		same := len(want) == len(s.kept)
		for i := 0; same && i < len(want); i++ {
			same = want[i].Hash == s.kept[i].Hash // both verified: same hash, same event
		}
		if !same {
			return &ChainError{Seq: s.seq, Line: int(s.seq), Reason: fmt.Sprintf(
				"the plan snapshot at this event (table %s, seq %d), the verified summary of the ledger that plans read instead of the whole ledger, does not match the ledger: it was written outside jitform. "+
					"Have the schema owner delete that row (ALTER TABLE %[1]s DISABLE TRIGGER snapshots_append_only first); the next plan rebuilds it from the verified ledger",
				p.ident("snapshots"), s.seq)}
		}
		latest = max(latest, s.seq)
	}
	head := events[len(events)-1]
	if latest > 0 && head.Seq-latest < snapshotRefresh {
		return nil
	}
	p.insertSnapshot(ctx, pool, CompactForReplay(events), Checkpoint{Seq: head.Seq, Hash: head.Hash}, prefixDigest(lines))
	return nil
}

// writeSnapshotServerPrefix records a snapshot at `at` whose prefix digest
// the server computes (the client holds only the tail's lines).
func (p *Postgres) writeSnapshotServerPrefix(ctx context.Context, pool *pgxpool.Pool, compact []Event, at Checkpoint) {
	var prefix, hash string
	var count int64
	if err := pool.QueryRow(ctx, fmt.Sprintf(pgPrefixSQL, p.ident("ledger")), at.Seq).Scan(&prefix, &count, &hash); err != nil {
		return
	}
	if count != at.Seq || hash != at.Hash {
		return
	}
	p.insertSnapshot(ctx, pool, compact, at, prefix)
}

func (p *Postgres) insertSnapshot(ctx context.Context, pool *pgxpool.Pool, compact []Event, at Checkpoint, prefix string) {
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
	_, _ = pool.Exec(ctx, "INSERT INTO "+p.ident("snapshots")+" (seq, format, hash, prefix_sha256, events) VALUES ($1, $2, $3, $4, $5)",
		at.Seq, snapshotFormat, at.Hash, prefix, b.String())
}
