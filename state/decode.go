package state

import (
	"bytes"
	"strconv"
	"time"
)

// lineFields is a ledger line split by the hand decoder: the event's
// fields, strings still as bytes (slices of the line when they hold no
// escapes), without allocating.
type lineFields struct {
	seq                                  int64
	time                                 time.Time
	typ, actor, payload, sig, prev, hash []byte
	hasSig                               bool
	// hashAt is the offset in the line of the hash value (after its
	// opening quote): the hashed bytes are the line up to there, then `"}`.
	hashAt int
	// canonical: the line is byte for byte what EncodeEvent writes for
	// these fields, so a reader need not re-encode it. The string fields
	// and payload are always checked canonical here; canonical adds the
	// seq (no leading zero or sign), the time (UTC, as time.Time's JSON
	// writes it) and no empty sig. FuzzScanEvent checks this against
	// EncodeEvent.
	canonical bool
}

// scanEvent splits a ledger line written in the canonical event shape
// (the fields in struct order, strings and payload canonical) without
// reflection. It is an optimisation only: ok is false for anything else,
// and the caller falls back to encoding/json, whose error it reports.
func scanEvent(raw []byte) (f lineFields, ok bool) {
	b, ok := cutPrefix(raw, `{"seq":`)
	if !ok {
		return f, false
	}
	i := 0
	for i < len(b) && (b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
		i++
	}
	seq, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil {
		return f, false
	}
	f.seq = seq
	var num [20]byte
	seqCanon := string(strconv.AppendInt(num[:0], seq, 10)) == string(b[:i])
	if b, ok = cutPrefix(b[i:], `,"time":`); !ok {
		return f, false
	}
	ts, b, ok := canonStringBytes(b)
	if !ok {
		return f, false
	}
	timeCanon := false
	if f.time, timeCanon = parseUTCTime(ts); !timeCanon {
		if f.time, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil {
			return f, false
		}
	}
	if b, ok = cutPrefix(b, `,"type":`); !ok {
		return f, false
	}
	if f.typ, b, ok = canonStringBytes(b); !ok {
		return f, false
	}
	if b, ok = cutPrefix(b, `,"actor":`); !ok {
		return f, false
	}
	if f.actor, b, ok = canonStringBytes(b); !ok {
		return f, false
	}
	if b, ok = cutPrefix(b, `,"payload":`); !ok {
		return f, false
	}
	rest, ok := canonValue(b, 0)
	if !ok {
		return f, false
	}
	f.payload = b[:len(b)-len(rest)]
	b = rest
	if nb, has := cutPrefix(b, `,"sig":`); has {
		if f.sig, b, ok = canonStringBytes(nb); !ok {
			return f, false
		}
		f.hasSig = true
	}
	if b, ok = cutPrefix(b, `,"prev":`); !ok {
		return f, false
	}
	if f.prev, b, ok = canonStringBytes(b); !ok {
		return f, false
	}
	if b, ok = cutPrefix(b, `,"hash":`); !ok {
		return f, false
	}
	f.hashAt = len(raw) - len(b) + 1
	if f.hash, b, ok = canonStringBytes(b); !ok {
		return f, false
	}
	if len(b) != 1 || b[0] != '}' {
		return f, false
	}
	f.canonical = seqCanon && timeCanon && (!f.hasSig || len(f.sig) > 0)
	return f, true
}

// decodeEventFast decodes a ledger line with scanEvent. The caller still
// checks that the line is canonical (scanEvent's canonical, or re-encoding
// the event and comparing the bytes), so what this accepts is exactly what
// the canonical check accepts.
func decodeEventFast(raw []byte) (e Event, ok bool) {
	f, ok := scanEvent(raw)
	if !ok {
		return e, false
	}
	return f.event(), true
}

// event is the Event of the fields, every string and the payload copied.
func (f *lineFields) event() Event {
	return Event{Seq: f.seq, Time: f.time, Type: string(f.typ), Actor: string(f.actor), Payload: bytes.Clone(f.payload),
		Sig: string(f.sig), Prev: string(f.prev), Hash: string(f.hash)}
}

// parseUTCTime reads the time as jitform writes it (RFC 3339 in UTC, the
// fraction without trailing zeros). ok is true only when formatting the
// result as time.Time's JSON does gives back exactly b, so the time is
// both what encoding/json would decode and canonical.
func parseUTCTime(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.fraction]Z
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	// Out-of-range fields (month 13, 24:00) normalise to another time,
	// trailing zeros format shorter: both fail the comparison.
	var buf [40]byte
	return t, string(t.AppendFormat(buf[:0], time.RFC3339Nano)) == string(b)
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return b, false
	}
	return b[len(p):], true
}
