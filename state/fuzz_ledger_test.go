package state

import (
	"bytes"
	"testing"
)

// FuzzReadLedger: no file content makes the reader panic, and whatever it
// accepts is a chain that Verify accepts and that re-encodes to exactly the
// bytes read (so nothing unverified slips through).
func FuzzReadLedger(f *testing.F) {
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := parseLedger(data, nil)
		if err != nil {
			if _, ok := err.(*ChainError); !ok {
				t.Fatalf("error of type %T, want *ChainError: %v", err, err)
			}
			return
		}
		if err := Verify(events); err != nil {
			t.Fatalf("accepted a ledger that fails Verify: %v", err)
		}
		var b bytes.Buffer
		for _, e := range events {
			line, err := EncodeEvent(e)
			if err != nil {
				t.Fatalf("accepted event %d does not encode: %v", e.Seq, err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("accepted bytes differ from their re-encoding:\n%q\n%q", data, b.Bytes())
		}
		// The head of what was read always matches it.
		if _, err := parseLedger(data, &headRecord{Seq: int64(len(events)), Hash: Head(events)}); err != nil {
			t.Fatalf("own head refused: %v", err)
		}
	})
}
