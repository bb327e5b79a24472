// Package dn puts LDAP distinguished names in one canonical string form so
// that two spellings of the same entry compare equal as plain strings.
//
// Canonical form: attribute types lowercased; values Unicode-normalised
// (NFKC) and lowercased with strings.ToLower (not full RFC 4518 case
// folding: ß stays ß), leading and trailing spaces removed and inner runs
// of spaces collapsed to one (RFC 4518 insignificant space handling, as
// caseIgnoreMatch does on the server); the AVAs of a multi-valued RDN
// sorted; every value re-escaped per RFC 4514 so the canonical string parses
// back to the same DN. Values are treated as caseIgnore strings: this is
// right for the naming attributes we meet (cn, uid, ou, dc, o) and is what
// OpenLDAP and Active Directory do for them.
package dn

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/text/unicode/norm"
)

// Canonical parses s as an RFC 4514 DN and returns its canonical string.
// The empty DN is an error: every DN we compare names an entry.
//
// A plan canonicalises the same DNs many times (every member of every
// group read, every principal resolved), so results are cached per string,
// and a DN made only of plain ASCII (letters, digits, '.', '_', '-') is
// canonicalised without the general parser.
func Canonical(s string) (string, error) {
	if c, ok := plainCanonical(s); ok {
		return c, nil
	}
	cache.mu.RLock()
	r, ok := cache.m[s]
	cache.mu.RUnlock()
	if ok {
		return r.dn, r.err
	}
	rdns, err := parse(s)
	if err == nil {
		r = cached{dn: strings.Join(rdns, ",")}
	} else {
		r = cached{err: err}
	}
	cache.mu.Lock()
	if len(cache.m) >= cacheMax {
		clear(cache.m) // a long-running `jitform run` must not grow without bound
	}
	cache.m[s] = r
	cache.mu.Unlock()
	return r.dn, r.err
}

type cached struct {
	dn  string
	err error
}

// cacheMax bounds the cache (about 100 bytes per entry).
const cacheMax = 1 << 18

var cache = struct {
	mu sync.RWMutex
	m  map[string]cached
}{m: map[string]cached{}}

// plainCanonical canonicalises the common DN whose RDNs are each one
// type=value, the type a descriptor ([A-Za-z][A-Za-z0-9-]*) and the value
// non-empty plain ASCII ([A-Za-z0-9._-]): its canonical form is the DN
// lowercased (nothing to normalise, fold, collapse, sort or escape). ok is
// false for anything else, which takes the general parser.
func plainCanonical(s string) (string, bool) {
	const (
		typeStart = iota
		typeRest
		valueStart
		valueRest
	)
	st := typeStart
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if c >= 'A' && c <= 'Z' {
			upper = true
		}
		digit := c >= '0' && c <= '9'
		switch st {
		case typeStart:
			if !letter {
				return "", false
			}
			st = typeRest
		case typeRest:
			switch {
			case c == '=':
				st = valueStart
			case !letter && !digit && c != '-':
				return "", false
			}
		case valueStart, valueRest:
			switch {
			case c == ',' && st == valueRest:
				st = typeStart
			case letter || digit || c == '.' || c == '_' || c == '-':
				st = valueRest
			default:
				return "", false
			}
		}
	}
	if st != valueRest {
		return "", false
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}

// Equal reports whether a and b are the same DN. A DN that does not parse
// equals nothing.
func Equal(a, b string) bool {
	ca, err := Canonical(a)
	if err != nil {
		return false
	}
	cb, err := Canonical(b)
	return err == nil && ca == cb
}

// IsDN reports whether s parses as a non-empty DN.
func IsDN(s string) bool {
	_, err := Canonical(s)
	return err == nil
}

// Parent returns the canonical DN of s without its first RDN ("" for a
// single-RDN DN).
func Parent(s string) (string, error) {
	rdns, err := parse(s)
	if err != nil {
		return "", err
	}
	return strings.Join(rdns[1:], ","), nil
}

// parse returns the canonical RDN strings of s, leaf first.
func parse(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse DN: empty DN")
	}
	d, err := ldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("parse DN %q: %w", clip(s), err)
	}
	out := make([]string, 0, len(d.RDNs))
	for i, rdn := range d.RDNs {
		avas := make([]string, 0, len(rdn.Attributes))
		for _, a := range rdn.Attributes {
			typ, err := canonicalType(a.Type)
			if err != nil {
				return nil, fmt.Errorf("parse DN %q: RDN %d: %w", clip(s), i+1, err)
			}
			val, err := canonicalValue(a.Value)
			if err != nil {
				return nil, fmt.Errorf("parse DN %q: RDN %d attribute %s: %w", clip(s), i+1, typ, err)
			}
			avas = append(avas, typ+"="+escapeValue(val))
		}
		sort.Strings(avas)
		// "cn=a+cn=a" names the same RDN as "cn=a": drop exact duplicates.
		avas = dedupe(avas)
		out = append(out, strings.Join(avas, "+"))
	}
	return out, nil
}

// canonicalType accepts a descriptor (cn, msDS-x) or a numeric OID, with
// an optional "oid." prefix that some old servers write.
func canonicalType(t string) (string, error) {
	t = strings.ToLower(t)
	t = strings.TrimPrefix(t, "oid.")
	if t == "" {
		return "", errors.New("empty attribute type")
	}
	if t[0] >= '0' && t[0] <= '9' {
		for _, part := range strings.Split(t, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" || (len(part) > 1 && part[0] == '0') {
				return "", fmt.Errorf("bad numeric OID attribute type %q", clip(t))
			}
		}
		return t, nil
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return "", fmt.Errorf("bad attribute type %q", clip(t))
		}
	}
	return t, nil
}

// canonicalValue folds a decoded value. Invalid UTF-8 is refused: folding
// would turn distinct bytes into U+FFFD and make different DNs equal.
func canonicalValue(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", errors.New("value is not valid UTF-8")
	}
	// NFKC again after lowering: ToLower can leave non-normalised output,
	// and Canonical must be idempotent.
	v = norm.NFKC.String(strings.ToLower(norm.NFKC.String(v)))
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' }), " "), nil
}

// escapeValue escapes a value per RFC 4514 section 2.4. Unlike
// ldap's encoder it keeps printable non-ASCII as UTF-8, so canonical DNs
// stay readable; controls and DEL are hex-escaped.
func escapeValue(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i, r := range v {
		switch {
		case r == '"' || r == '+' || r == ',' || r == ';' || r == '<' || r == '>' || r == '\\' || r == '=':
			b.WriteByte('\\')
			b.WriteRune(r)
		case i == 0 && (r == ' ' || r == '#'):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' && i == len(v)-1:
			b.WriteString(`\ `)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// clip keeps error messages short when a hostile DN is huge.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// FirstValue is the value of s's first RDN when it has a single attribute
// (uid=alice,ou=people,... -> alice): the name a person writes for an entry.
func FirstValue(s string) (string, bool) {
	d, err := ldap.ParseDN(s)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) != 1 {
		return "", false
	}
	v := d.RDNs[0].Attributes[0].Value
	return v, v != ""
}
