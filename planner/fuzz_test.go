package planner

import (
	"bytes"
	"testing"
)

// FuzzParsePlan: no input makes the plan reader panic, and whatever it
// accepts renders and reads back to the same plan ID.
func FuzzParsePlan(f *testing.F) {
	var good bytes.Buffer
	p := samplePlan(&testing.T{})
	if err := RenderJSON(&good, p); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte(`{"format_version":"1.0"}`))
	f.Add([]byte(`{"format_version":"2.0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePlan("fuzz.json", b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := RenderJSON(&out, p); err != nil {
			t.Fatal(err)
		}
		q, err := parsePlan("fuzz.json", out.Bytes())
		if err != nil {
			t.Fatalf("accepted plan does not read back: %v", err)
		}
		if q.ID != p.ID {
			t.Fatalf("ID changed on round trip")
		}
		if err := RenderText(&out, q, false); err != nil {
			t.Fatal(err)
		}
	})
}
