package dn

import (
	"strings"
	"testing"
)

func slowCanonical(s string) (string, error) {
	rdns, err := parse(s)
	if err != nil {
		return "", err
	}
	return strings.Join(rdns, ","), nil
}

// TestPlainCanonicalAgreesWithParser: the shortcut for plain ASCII DNs
// gives what the general parser gives, and declines what it must not
// handle (escapes, spaces, multi-valued RDNs, OIDs, non-ASCII, empties).
func TestPlainCanonicalAgreesWithParser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		plain bool
	}{
		{"uid=alice,ou=people,dc=example,dc=org", true},
		{"UID=Alice,OU=People,DC=Example,DC=org", true},
		{"cn=db-admins_2.x,dc=example", true},
		{"cn=a b,dc=x", false},
		{"cn=a+uid=b,dc=x", false},
		{"cn=a\\,b,dc=x", false},
		{"2.5.4.3=a,dc=x", false},
		{"oid.2.5.4.3=a", false},
		{"cn=,dc=x", false},
		{"cn=a,", false},
		{"cn=é,dc=x", false},
		{"=a", false},
		{"cn", false},
		{"", false},
		{"cn=#41", false},
	}
	for _, tt := range tests {
		got, ok := plainCanonical(tt.in)
		if ok != tt.plain {
			t.Errorf("plainCanonical(%q) ok = %v, want %v", tt.in, ok, tt.plain)
			continue
		}
		if !ok {
			continue
		}
		want, err := slowCanonical(tt.in)
		if err != nil || got != want {
			t.Errorf("plainCanonical(%q) = %q, parser gives %q, %v", tt.in, got, want, err)
		}
	}
}

// FuzzPlainCanonical: whatever the shortcut accepts, the parser canonicalises
// to the same string; and Canonical (cached) equals the parser on any input.
func FuzzPlainCanonical(f *testing.F) {
	for _, s := range []string{"uid=a,dc=b", "CN=X-1,DC=y.z", "cn=a b", "a=b+c=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := slowCanonical(s)
		if got, ok := plainCanonical(s); ok && (werr != nil || got != want) {
			t.Fatalf("plainCanonical(%q) = %q, parser %q, %v", s, got, want, werr)
		}
		for range 2 { // uncached, then cached
			got, err := Canonical(s)
			if (err == nil) != (werr == nil) || got != want {
				t.Fatalf("Canonical(%q) = %q, %v; parser %q, %v", s, got, err, want, werr)
			}
		}
	})
}
