package dn

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10<<10)
	tests := []struct {
		name, in, want string
		wantErr        string
	}{
		{name: "mixed case and spaces", in: "CN=Alice, OU=People,DC=Example,DC=org", want: "cn=alice,ou=people,dc=example,dc=org"},
		{name: "already canonical", in: "cn=alice,ou=people,dc=example,dc=org", want: "cn=alice,ou=people,dc=example,dc=org"},
		{name: "spaces around separators", in: " cn = Alice ,  dc = x ", want: "cn=alice,dc=x"},
		{name: "escaped comma kept", in: `cn=a\,b,dc=x`, want: `cn=a\,b,dc=x`},
		{name: "hex escaped comma", in: `cn=a\2Cb,dc=x`, want: `cn=a\,b,dc=x`},
		{name: "all specials", in: `cn=\"\+\,\;\<\>\=\\x,dc=x`, want: `cn=\"\+\,\;\<\>\=\\x,dc=x`},
		{name: "leading hash escaped", in: `cn=\#1,dc=x`, want: `cn=\#1,dc=x`},
		{name: "escaped surrounding spaces trimmed", in: `cn=\ a\ ,dc=x`, want: `cn=a,dc=x`},
		{name: "inner spaces collapsed", in: `cn=Ann   Lee,dc=x`, want: `cn=ann lee,dc=x`},
		{name: "multi-valued RDN sorted", in: "UID=bob+CN=Bob,dc=x", want: "cn=bob+uid=bob,dc=x"},
		{name: "multi-valued duplicate", in: "cn=a+CN=A,dc=x", want: "cn=a,dc=x"},
		{name: "semicolon separator", in: "cn=a;dc=x", want: "cn=a,dc=x"},
		{name: "unicode folded", in: "CN=ÉLODIE,DC=x", want: "cn=élodie,dc=x"},
		{name: "unicode decomposed is NFC-equal", in: "cn=E\u0301lodie,dc=x", want: "cn=élodie,dc=x"},
		{name: "utf8 hex escapes", in: `cn=\C3\89lodie,dc=x`, want: "cn=élodie,dc=x"},
		{name: "escaped NUL", in: `cn=a\00b,dc=x`, want: `cn=a\00b,dc=x`},
		{name: "numeric oid type", in: "2.5.4.3=Alice,dc=x", want: "2.5.4.3=alice,dc=x"},
		{name: "oid prefix", in: "OID.2.5.4.3=Alice,dc=x", want: "2.5.4.3=alice,dc=x"},
		{name: "ber value", in: "cn=#04024869,dc=x", want: "cn=hi,dc=x"},
		{name: "10 KB value", in: "cn=" + strings.ToUpper(big) + ",dc=x", want: "cn=" + big + ",dc=x"},
		{name: "empty", in: "", wantErr: "empty DN"},
		{name: "blank", in: "   ", wantErr: "empty DN"},
		{name: "no equals", in: "alice", wantErr: "parse DN"},
		{name: "unescaped comma in value", in: "cn=a,b,dc=x", wantErr: "parse DN"},
		{name: "raw quote", in: `cn=a"b,dc=x`, wantErr: "unescaped"},
		{name: "raw angle", in: `cn=<a>,dc=x`, wantErr: "unescaped"},
		{name: "raw NUL", in: "cn=a\x00b,dc=x", wantErr: "NUL"},
		{name: "dangling backslash", in: `cn=a\`, wantErr: "parse DN"},
		{name: "bad hex", in: `cn=a\zz,dc=x`, wantErr: "parse DN"},
		{name: "invalid utf8", in: `cn=\ff,dc=x`, wantErr: "UTF-8"},
		{name: "bad type", in: "c n=a,dc=x", wantErr: "bad attribute type"},
		{name: "empty type", in: "=a,dc=x", wantErr: "parse DN"},
		{name: "bad oid", in: "2..4=a", wantErr: "bad numeric OID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Canonical(%q) = %q, %v; want error containing %q", clip(tt.in), clip(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonical(%q): %v", clip(tt.in), err)
			}
			if got != tt.want {
				t.Fatalf("Canonical(%q) = %q, want %q", clip(tt.in), clip(got), clip(tt.want))
			}
			assertRoundTrip(t, got)
		})
	}
}

// assertRoundTrip checks the canonical string parses back (with the
// library parser) to a DN whose canonical form is itself.
func assertRoundTrip(t *testing.T, c string) {
	t.Helper()
	if _, err := ldap.ParseDN(c); err != nil {
		t.Fatalf("canonical %q does not parse: %v", clip(c), err)
	}
	again, err := Canonical(c)
	if err != nil || again != c {
		t.Fatalf("Canonical(canonical %q) = %q, %v; want itself", clip(c), clip(again), err)
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"CN=Alice, OU=People,DC=Example,DC=org", "cn=alice,ou=people,dc=example,dc=org", true},
		{`cn=a\,b,dc=x`, "cn=a,b,dc=x", false},
		{`cn=a\,b,dc=x`, `cn=a\2cb,dc=x`, true},
		{`cn=a\+b,dc=x`, "cn=a+b=c,dc=x", false}, // one AVA vs a multi-valued RDN (b=c)
		{"cn=a+uid=b,dc=x", "uid=b+cn=a,dc=x", true},
		{"cn=a,dc=x", "cn=a,dc=y", false},
		{"cn=a,dc=x", "cn=a,dc=x,dc=y", false},
		{"cn=a b,dc=x", "cn=ab,dc=x", false},
		{`cn=a\00,dc=x`, "cn=a,dc=x", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParentAndIsDN(t *testing.T) {
	t.Parallel()
	p, err := Parent("CN=A,OU=People,DC=x")
	if err != nil || p != "ou=people,dc=x" {
		t.Fatalf("Parent = %q, %v", p, err)
	}
	if IsDN("alice") || IsDN("") || !IsDN("uid=alice,dc=x") {
		t.Fatal("IsDN misclassifies")
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"cn=a,dc=x", `cn=a\,b+uid=\00,dc=x`, "CN=É\u0301 ,dc=x", `cn=\ \#x\ ,o=y`, "cn=#0401ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Canonical(s)
		if err != nil {
			return
		}
		assertRoundTrip(t, c)
	})
}

func BenchmarkCanonical(b *testing.B) {
	for b.Loop() {
		if _, err := Canonical("CN=Alice Smith+UID=asmith, OU=People,DC=Example,DC=org"); err != nil {
			b.Fatal(err)
		}
	}
}
