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

// FuzzPayloadFields: the compaction's payload reader agrees with
// encoding/json on every field it reads, and errs exactly when it does.
func FuzzPayloadFields(f *testing.F) {
	f.Add([]byte(`{"action":"add","group":"group.g","id":"c1","member":"uid=a"}`))
	f.Add([]byte(`{"ID":"x","id":"y"}`))
	f.Add([]byte(`{"id":"c1","status":"done","x":[1,{"a":null}]}`))
	f.Add([]byte(`{"id":5}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		var wc Change
		werr := json.Unmarshal(p, &wc)
		c, err := decodeChange(p)
		if (err == nil) != (werr == nil) || err == nil && (c.ID != wc.ID || c.Group != wc.Group || c.Member != wc.Member || c.Action != wc.Action) {
			t.Fatalf("decodeChange(%q) = %+v, %v; encoding/json %+v, %v", p, c, err, wc, werr)
		}
		var wo ChangeOutcome
		werr = json.Unmarshal(p, &wo)
		o, err := decodeOutcome(p)
		if (err == nil) != (werr == nil) || err == nil && (o.ID != wo.ID || o.Status != wo.Status) {
			t.Fatalf("decodeOutcome(%q) = %+v, %v; encoding/json %+v, %v", p, o, err, wo, werr)
		}
	})
}
