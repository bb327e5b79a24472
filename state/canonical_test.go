package state

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// referenceEncode is the definition EncodeEvent must match: encoding/json
// on the Event struct, no HTML escaping, payload through CanonicalJSON.
func referenceEncode(e Event) ([]byte, error) {
	if len(bytes.TrimSpace(e.Payload)) == 0 {
		e.Payload = json.RawMessage("null")
	}
	canon, err := CanonicalJSON(e.Payload)
	if err != nil {
		return nil, err
	}
	e.Payload = canon
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func TestIsCanonicalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{`null`, true}, {`{}`, true}, {`[]`, true}, {`{"a":1,"b":[true,false,null]}`, true},
		{`{"b":1,"a":2}`, false}, {`{"a":1,"a":2}`, false}, {`{ "a":1}`, false}, {`[1, 2]`, false},
		{`1.50`, true}, {`-0`, true}, {`1e5`, true}, {`01`, false}, {`1.`, false}, {`.5`, false}, {`+1`, false},
		{`"<&>"`, true}, {`"\u003c"`, false}, {`"a\nb"`, true}, {`"a\u000ab"`, false}, {`"\u001f"`, true}, {`"\u001F"`, false},
		{`"\u2028"`, true}, {"\"\u2028\"", false}, {`"\ufffd"`, false}, {"\"\xff\"", false}, {`"\/"`, false}, {`"é"`, true},
		{"\"a\tb\"", false}, {`{"a":1}x`, false}, {``, false}, {`nul`, false}, {`{"a"}`, false}, {`[1,]`, false},
		{`{"\u0001":1,"a":2}`, true}, {`{"a":2,"\u0001":1}`, false},
	}
	for _, tc := range tests {
		got := isCanonicalJSON([]byte(tc.in))
		if got != tc.want {
			t.Errorf("isCanonicalJSON(%q) = %v, want %v", tc.in, got, tc.want)
		}
		c, err := CanonicalJSON([]byte(tc.in))
		if ref := err == nil && bytes.Equal(c, []byte(tc.in)); ref != got {
			t.Errorf("isCanonicalJSON(%q) = %v, but CanonicalJSON gives %q, %v", tc.in, got, c, err)
		}
	}
}

// FuzzCanonicalJSON: the fast check agrees with decoding and re-encoding.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x\n",{"b":null}],"c":-1.5e3}`, `"\u2029\u0000"`, `{"b":1,"a":2}`, `[ ]`, "\"\x7f\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalJSON(b)
		want := err == nil && bytes.Equal(c, b)
		if got := isCanonicalJSON(b); got != want {
			t.Fatalf("isCanonicalJSON(%q) = %v; CanonicalJSON = %q, %v", b, got, c, err)
		}
	})
}

// FuzzEncodeEvent: the fast encoder writes what encoding/json writes.
func FuzzEncodeEvent(f *testing.F) {
	f.Add(int64(1), int64(1795424401000000000), "change_intent", "jitform", "", "", "abc", []byte(`{"b":1, "a":"<x>"}`))
	f.Add(int64(7), int64(-5), "approve", "carol\u2028\"\\", "-----BEGIN SSH SIGNATURE-----\nU1NI\n-----END SSH SIGNATURE-----\n", "\x00\xff", "", []byte(``))
	f.Fuzz(func(t *testing.T, seq, nanos int64, typ, actor, sig, prev, hash string, payload []byte) {
		e := Event{Seq: seq, Time: time.Unix(0, nanos).UTC(), Type: typ, Actor: actor, Payload: payload, Sig: sig, Prev: prev, Hash: hash}
		got, gerr := EncodeEvent(e)
		want, werr := referenceEncode(e)
		if (gerr == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("EncodeEvent = %q, %v\nencoding/json = %q, %v", got, gerr, want, werr)
		}
	})
}
