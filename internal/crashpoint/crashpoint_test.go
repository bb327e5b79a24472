package crashpoint

import "testing"

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Spec
		ok   bool
	}{
		{"", Spec{}, false},
		{"apply.after-call", Spec{Point: AfterCall, N: 1}, true},
		{"apply.after-call:3", Spec{Point: AfterCall, N: 3}, true},
		{"apply.after-intent:2:stop", Spec{Point: AfterIntent, N: 2, Stop: true}, true},
		{"apply.before-intent:stop", Spec{Point: BeforeIntent, N: 1, Stop: true}, true},
		{"apply.after-call:0", Spec{Point: "apply.after-call:0", N: 1}, true}, // never matches a point
		{"apply.after-call:x", Spec{Point: "apply.after-call:x", N: 1}, true},
	}
	for _, tc := range cases {
		got, ok := Parse(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && tc.want.N > 0 && tc.in != "" {
			if again, _ := Parse(got.String()); again != got {
				t.Errorf("Parse(%q).String() = %q does not round-trip", tc.in, got.String())
			}
		}
	}
}

// Hit is inert unless the point and the occurrence match: reaching the end
// of this test at all proves it (a match would kill the test binary).
func TestHitOtherPointsAreInert(t *testing.T) {
	t.Setenv(Env, AfterCall+":2")
	Hit(BeforeIntent)
	Hit(AfterIntent)
	Hit(AfterCall) // first pass; the second would kill
	t.Setenv(Env, "")
	Hit(AfterCall)
}
