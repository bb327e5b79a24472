package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sequentialParse is the reference for the parallel reader: each line
// decoded (by the hand decoder, else encoding/json), re-encoded and compared, then checked
// against its place in the chain (checkLink re-hashes the event), one line
// after the other.
func sequentialParse(data []byte) ([]Event, *ChainError) {
	var events []Event
	prev := ""
	for i, raw := range bytes.SplitAfter(data, []byte("\n")) {
		if len(raw) == 0 {
			break
		}
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		want := int64(i) + 1
		if len(raw) == 0 {
			return events, &ChainError{Seq: want, Line: i + 1, Reason: "empty line: every line must be one event"}
		}
		e, ok := decodeEventFast(raw)
		if !ok {
			e = Event{}
			if err := json.Unmarshal(raw, &e); err != nil {
				return events, &ChainError{Seq: want, Line: i + 1, Reason: fmt.Sprintf("not a JSON event: %v", err)}
			}
		}
		seq := e.Seq
		if seq <= 0 {
			seq = want
		}
		if enc, err := EncodeEvent(e); err != nil || !bytes.Equal(enc, raw) {
			return events, &ChainError{Seq: seq, Line: i + 1, Reason: "the line is not in canonical form (spacing, key order, an unknown or repeated field, or a payload that is not canonical JSON): it was edited outside jitform"}
		}
		if cerr := checkLink(e, want, prev, i+1); cerr != nil {
			return events, cerr
		}
		events = append(events, e)
		prev = e.Hash
	}
	return events, nil
}

// bigLedger is the bytes of an n-event ledger with signed-looking events
// (escaped sig), fractional times and varied payloads.
func bigLedger(t *testing.T, n int) [][]byte {
	t.Helper()
	lines := make([][]byte, 0, n)
	prev := ""
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		e := testEvent(fmt.Sprintf("w%d", i%7), i)
		e.Time = base.Add(time.Duration(i) * 1500 * time.Millisecond)
		if i%97 == 0 {
			e.Type, e.Actor, e.Sig = EventApprove, "al\"ice", "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
		}
		stored, line, err := prepareEvent(e, int64(i)+1, prev, base)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		prev = stored.Hash
	}
	return lines
}

// TestParallelReadMatchesSequential: the chunked, parallel reader names the
// same first bad event, with the same reason, as checking line by line, for
// damage at the start, the middle, the end and on both sides of chunk
// boundaries (the last chunk is a partial one).
func TestParallelReadMatchesSequential(t *testing.T) {
	t.Parallel()
	n := 4*chunkLines + 123
	clean := bigLedger(t, n)
	join := func(lines [][]byte) []byte {
		var b bytes.Buffer
		for _, l := range lines {
			b.Write(l)
			b.WriteByte('\n')
		}
		return b.Bytes()
	}
	tampers := map[string]func(lines [][]byte, i int) [][]byte{
		"edited payload": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`"who":"w`), []byte(`"who":"x`), 1)
			return lines
		},
		"edited time": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`"time":"2026-03`), []byte(`"time":"2026-04`), 1)
			return lines
		},
		"not canonical": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`,"type":`), []byte(`, "type":`), 1)
			return lines
		},
		"trailing zero in the time": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`Z"`), []byte(`.0Z"`), 1)
			return lines
		},
		"leading zero in the seq": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`{"seq":`), []byte(`{"seq":0`), 1)
			return lines
		},
		"bad prev link": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`"prev":"`), []byte(`"prev":"0`), 1)
			return lines
		},
		"edited hash": func(lines [][]byte, i int) [][]byte {
			lines[i] = bytes.Replace(lines[i], []byte(`"hash":"`), []byte(`"hash":"f`), 1)
			return lines
		},
		"deleted event": func(lines [][]byte, i int) [][]byte {
			return append(lines[:i:i], lines[i+1:]...)
		},
		"duplicated event": func(lines [][]byte, i int) [][]byte {
			return append(lines[:i+1:i+1], lines[i:]...)
		},
		"not JSON": func(lines [][]byte, i int) [][]byte {
			lines[i] = lines[i][:len(lines[i])-3]
			return lines
		},
		"empty line": func(lines [][]byte, i int) [][]byte {
			lines[i] = nil
			return lines
		},
	}
	at := map[string]int{
		"first": 0, "middle": n / 2, "last": n - 1,
		"end of a chunk": chunkLines - 1, "start of a chunk": 2 * chunkLines,
		"end of the last full chunk": 4*chunkLines - 1, "start of the last chunk": 4 * chunkLines,
	}
	for name, tamper := range tampers {
		for where, i := range at {
			lines := make([][]byte, len(clean))
			for k := range clean {
				lines[k] = bytes.Clone(clean[k])
			}
			data := join(tamper(lines, i))
			wantEvents, want := sequentialParse(data)
			got, err := parseLedger(data, nil)
			if want == nil { // the last event deleted: only ledger.head tells
				if err != nil || len(got) != len(wantEvents) {
					t.Errorf("%s at %s: got %d events, %v; the reference accepts %d", name, where, len(got), err, len(wantEvents))
				}
				continue
			}
			cerr, ok := err.(*ChainError)
			if !ok || *cerr != *want {
				t.Errorf("%s at %s (line %d): got %v, want %v", name, where, i+1, err, want)
				continue
			}
			if len(got) != len(wantEvents) || len(got) > 0 && got[len(got)-1].Hash != wantEvents[len(wantEvents)-1].Hash {
				t.Errorf("%s at %s: %d events before the error, want %d", name, where, len(got), len(wantEvents))
			}
		}
	}
	// Untouched, both readers give the same events.
	data := join(clean)
	want, werr := sequentialParse(data)
	got, err := parseLedger(data, &headRecord{Seq: int64(n), Hash: want[n-1].Hash})
	if werr != nil || err != nil || len(got) != n {
		t.Fatalf("clean ledger: %v, %v, %d events", werr, err, len(got))
	}
	for i := range want {
		if !want[i].Time.Equal(got[i].Time) || want[i].Hash != got[i].Hash || want[i].Prev != got[i].Prev ||
			want[i].Sig != got[i].Sig || want[i].Type != got[i].Type || want[i].Actor != got[i].Actor ||
			want[i].Seq != got[i].Seq || !bytes.Equal(want[i].Payload, got[i].Payload) {
			t.Fatalf("event %d differs:\n%#v\n%#v", i+1, got[i], want[i])
		}
	}
	// A payload is not shared with the next: appending to one copies it.
	_ = append(got[0].Payload, 'x')
	if !bytes.Equal(got[1].Payload, want[1].Payload) {
		t.Fatal("appending to a payload overwrote the next event's")
	}
}

// FuzzScanEvent: a line scanEvent calls canonical is exactly what
// EncodeEvent writes for the event it decodes, so the reader may skip
// re-encoding it.
func FuzzScanEvent(f *testing.F) {
	for _, e := range []Event{
		testEvent("a", 1),
		{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), Type: "approve", Actor: "al\"ice\u2028", Payload: json.RawMessage(`{"a":[1,"x\n"],"b":null}`), Sig: "-----BEGIN SSH SIGNATURE-----\nAAA\n", Prev: "p", Hash: "h"},
		{Seq: 12, Time: time.Date(2026, 12, 31, 23, 59, 59, 120000000, time.FixedZone("", 3600)), Type: "x", Payload: json.RawMessage(`{}`)},
	} {
		line, err := EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line)
	}
	f.Add([]byte(`{"seq":01,"time":"2026-01-01T00:00:00.10Z","type":"t","actor":"a","payload":null,"sig":"","prev":"","hash":""}`))
	f.Add([]byte(`{"seq":-0,"time":"2026-02-30T24:00:00Z","type":"t","actor":"a","payload":null,"prev":"","hash":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fl, ok := scanEvent(raw)
		if !ok || !fl.canonical {
			return
		}
		e := fl.event()
		enc, err := EncodeEvent(e)
		if err != nil || !bytes.Equal(enc, raw) {
			t.Fatalf("scanEvent calls %q canonical, EncodeEvent gives %q, %v", raw, enc, err)
		}
		if !bytes.HasSuffix(raw[:fl.hashAt], []byte(`"hash":"`)) {
			t.Fatalf("hashAt %d does not follow the hash key in %q", fl.hashAt, raw)
		}
		var slow Event
		if err := json.Unmarshal(raw, &slow); err != nil || !slow.Time.Equal(e.Time) || slow.Time.Location() != e.Time.Location() {
			t.Fatalf("encoding/json reads %q as %v, %v; scanEvent %v", raw, slow.Time, err, e.Time)
		}
	})
}

func TestParseUTCTime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"2026-01-02T03:04:05Z": true, "2026-01-02T03:04:05.5Z": true, "2026-01-02T03:04:05.123456789Z": true,
		"2026-01-02T03:04:05.50Z": false, "2026-01-02T03:04:05.Z": false, "2026-01-02T03:04:05.1234567890Z": false,
		"2026-13-02T03:04:05Z": false, "2026-02-30T03:04:05Z": false, "2026-01-02T24:00:00Z": false,
		"2026-01-02T03:04:05+00:00": false, "2026-01-02 03:04:05Z": false, "2026-01-02T03:04:0xZ": false, "": false,
	} {
		got, ok := parseUTCTime([]byte(in))
		if ok != want {
			t.Errorf("parseUTCTime(%q) ok = %v, want %v", in, ok, want)
			continue
		}
		if ok {
			ref, err := time.Parse(time.RFC3339Nano, in)
			if err != nil || !ref.Equal(got) || ref.Location() != got.Location() {
				t.Errorf("parseUTCTime(%q) = %v; time.Parse gives %v, %v", in, got, ref, err)
			}
		}
	}
}

func TestHasSpecialByte(t *testing.T) {
	t.Parallel()
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }
	word := func(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
	for c := range 256 {
		for pos := range 8 {
			b := []byte(strings.Repeat("a", 8))
			b[pos] = byte(c)
			if got := hasSpecialByte(word(b)); got != special(byte(c)) {
				t.Fatalf("byte %#x at %d: %v", c, pos, got)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		b := make([]byte, 8)
		any := false
		for k := range b {
			b[k] = byte(0x1c + r.IntN(0x68)) // around 0x20, the quote, the backslash and 0x80
			any = any || special(b[k])
		}
		if got := hasSpecialByte(word(b)); got != any {
			t.Fatalf("%q: %v, want %v", b, got, any)
		}
	}
}
