package state

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCanonicalFormAgreesWithEncodingJSONAtTheEdges: a ledger line is
// accepted as canonical exactly when encoding/json reads it, at the
// nesting limit and on cut-off input, so a payload jitform could not
// re-encode is never taken as written by jitform.
func TestCanonicalFormAgreesWithEncodingJSONAtTheEdges(t *testing.T) {
	t.Parallel()
	nest := func(open, close string, depth int) string {
		return strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"arrays at the nesting limit", nest("[", "]", 10000)},
		{"arrays one past the limit", nest("[", "]", 10001)},
		{"objects at the nesting limit", nest(`{"a":`, "}", 10000)},
		{"objects one past the limit", nest(`{"a":`, "}", 10001)},
		{"an array in objects past the limit", strings.Repeat(`{"a":`, 10000) + "[1]" + strings.Repeat("}", 10000)},
		{"an object cut after its brace", `{`},
		{"an array cut after its bracket", `[`},
		{"an object cut after a key", `{"a"`},
		{"an object cut after a value", `{"a":1`},
		{"an array cut after a value", `[1`},
		{"a string cut before its closing quote", `"abc`},
		{"a string cut inside an escape", `"ab\`},
		{"a string cut inside a unicode escape", `"\u00`},
		{"a key cut before its closing quote", `{"ab`},
		{"a number cut after its sign", `-`},
		{"a literal cut short", `tru`},
		{"a control character escaped", `"\u001f"`},
		{"a line separator escaped", `"\u2028"`},
		{"empty object", `{}`},
		{"empty array", `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := json.Valid([]byte(tc.in))
			if got := isCanonicalJSON([]byte(tc.in)); got != want {
				t.Fatalf("isCanonicalJSON = %v, encoding/json reads it: %v", got, want)
			}
		})
	}
}
