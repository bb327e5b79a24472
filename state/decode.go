package state

import (
	"bytes"
	"strconv"
	"time"
)

// decodeEventFast decodes a ledger line written in the canonical event
// shape (the fields in struct order, strings and payload canonical) without
// reflection. It is an optimisation only: ok is false for anything else,
// and the caller falls back to encoding/json, whose error it reports. The
// caller still re-encodes the event and compares the bytes with the line,
// so what this accepts is exactly what the canonical check accepts.
func decodeEventFast(raw []byte) (e Event, ok bool) {
	b, ok := cutPrefix(raw, `{"seq":`)
	if !ok {
		return e, false
	}
	i := 0
	for i < len(b) && (b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
		i++
	}
	seq, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil {
		return e, false
	}
	e.Seq = seq
	if b, ok = cutPrefix(b[i:], `,"time":`); !ok {
		return e, false
	}
	ts, b, ok := canonString(b)
	if !ok {
		return e, false
	}
	if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return e, false
	}
	if b, ok = cutPrefix(b, `,"type":`); !ok {
		return e, false
	}
	if e.Type, b, ok = canonString(b); !ok {
		return e, false
	}
	if b, ok = cutPrefix(b, `,"actor":`); !ok {
		return e, false
	}
	if e.Actor, b, ok = canonString(b); !ok {
		return e, false
	}
	if b, ok = cutPrefix(b, `,"payload":`); !ok {
		return e, false
	}
	rest, ok := canonValue(b, 0)
	if !ok {
		return e, false
	}
	e.Payload = bytes.Clone(b[:len(b)-len(rest)])
	b = rest
	if nb, has := cutPrefix(b, `,"sig":`); has {
		if e.Sig, b, ok = canonString(nb); !ok {
			return e, false
		}
	}
	if b, ok = cutPrefix(b, `,"prev":`); !ok {
		return e, false
	}
	if e.Prev, b, ok = canonString(b); !ok {
		return e, false
	}
	if b, ok = cutPrefix(b, `,"hash":`); !ok {
		return e, false
	}
	if e.Hash, b, ok = canonString(b); !ok {
		return e, false
	}
	return e, len(b) == 1 && b[0] == '}'
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return b, false
	}
	return b[len(p):], true
}
