package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeEventFast: whatever the hand decoder accepts and re-encodes to
// the same line, encoding/json decodes to the same event (the reader
// relies on this to skip reflection).
func FuzzDecodeEventFast(f *testing.F) {
	for _, e := range []Event{
		testEvent("a", 1),
		{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), Type: "approve", Actor: "al\"ice\u2028", Payload: json.RawMessage(`{"a":[1,"x\n"],"b":null}`), Sig: "-----BEGIN SSH SIGNATURE-----\nAAA\n", Prev: "p", Hash: "h"},
	} {
		line, err := EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := decodeEventFast(raw)
		if !ok {
			return
		}
		enc, err := EncodeEvent(fast)
		if err != nil || string(enc) != string(raw) {
			return // the reader refuses this line as not canonical
		}
		var slow Event
		if err := json.Unmarshal(raw, &slow); err != nil {
			t.Fatalf("fast decoder accepted a line encoding/json refuses: %v", err)
		}
		if !fast.Time.Equal(slow.Time) {
			t.Fatalf("time %v != %v", fast.Time, slow.Time)
		}
		fast.Time, slow.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast decode differs:\n%#v\n%#v", fast, slow)
		}
	})
}
