package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/hcl/v2"
)

// Ephemeral accounts (BeyondTrust's "JIT account creation and deletion"):
//
//	account "adm" {
//	  target    = target.ldap.corp
//	  ephemeral = true
//	  base      = "ou=jit,dc=example,dc=org"
//	  pattern   = "adm-{principal}-{grant}"
//	}
//
// For each grant counting now under a policy that lists the block, one
// account named by the pattern exists under base, carries the grant in its
// description, holds a password delivered only to the grant's principal,
// and stands in for the principal in the policy's groups on the same
// target. When the grant stops counting it leaves the groups and is
// deleted. Names are built from a fixed character set, so a principal's
// spelling can never inject into a DN or a filter.

// DefaultEphemeralPattern names an ephemeral account when pattern is not set.
const DefaultEphemeralPattern = "adm-{principal}-{grant}"

// MaxEphemeralName bounds an expanded name: Active Directory's cn is at
// most 64 characters.
const MaxEphemeralName = 64

// EphemeralMarker is the description prefix that links an entry to the
// account block that created it; the grant ID follows it.
func (a *Account) EphemeralMarker() string { return "jitform " + a.BaseAddr + " grant " }

// InstanceName expands the pattern for one grant: {principal} is the
// principal's short name (its actor name, or a DN's first value), {grant}
// the grant's ID without "g-" or "grant."; both lower-cased, with any
// character outside [a-z0-9._-] turned into "-".
func (a *Account) InstanceName(principal, grant string) (string, error) {
	p := a.Pattern
	if p == "" {
		p = DefaultEphemeralPattern
	}
	who := ActorNameOf(principal)
	if strings.Contains(who, "=") {
		if d, err := ldap.ParseDN(who); err == nil && len(d.RDNs) > 0 && len(d.RDNs[0].Attributes) > 0 {
			who = d.RDNs[0].Attributes[0].Value
		}
	}
	who = nameToken(who)
	if who == "" {
		return "", fmt.Errorf("%s: principal %q leaves nothing to name an account with", a.Addr, principal)
	}
	g := strings.TrimPrefix(strings.TrimPrefix(grant, "grant."), "g-")
	g = nameToken(g)
	if g == "" {
		return "", fmt.Errorf("%s: grant %q leaves nothing to name an account with", a.Addr, grant)
	}
	name := strings.NewReplacer("{principal}", who, "{grant}", g).Replace(p)
	if len(name) > MaxEphemeralName {
		return "", fmt.Errorf("%s: the account name %q for %s is %d characters, longer than %d; shorten pattern", a.Addr, name, grant, len(name), MaxEphemeralName)
	}
	return name, nil
}

// InstanceDN is the DN of the account named name: uid=NAME,BASE on
// OpenLDAP, cn=NAME,BASE on Active Directory. name comes from
// InstanceName, whose characters need no escaping in a DN.
func (a *Account) InstanceDN(name string) string {
	return a.InstanceRDN() + "=" + ldap.EscapeDN(name) + "," + a.Base
}

// InstanceRDN is the naming attribute of the accounts a block creates.
func (a *Account) InstanceRDN() string {
	if a.Target != nil && (a.Target.LDAP != nil && a.Target.LDAP.Flavor == FlavorActiveDirectory ||
		a.Target.LDIF != nil && a.Target.LDIF.Flavor == FlavorActiveDirectory) {
		return "cn"
	}
	return "uid"
}

// SAMAccountName is the pre-Windows 2000 logon name Active Directory
// requires for a created user: at most 20 characters, so a longer name
// keeps its first 11 and a hash of the whole.
func SAMAccountName(name string) string {
	if len(name) <= 20 {
		return name
	}
	h := sha256.Sum256([]byte(name))
	return strings.TrimRight(name[:11], "-.") + "-" + hex.EncodeToString(h[:])[:8]
}

func nameToken(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-.")
}

// ephemeralAccount checks an ephemeral account block's attributes and
// returns the identity that keeps two blocks from managing the same
// accounts.
func (l *loader) ephemeralAccount(at blockAttrs, diags hcl.Diagnostics, kind string, raw *accountHCL) (identity string, bad bool) {
	fail := func(attr, summary, format string, args ...any) {
		l.errorf(at.rangeOf(attr), summary, format, args...)
		bad = true
	}
	if kind == KindWinRM {
		// Groups on a Windows host hold SIDs, which exist only once the
		// account does: the plan could not show, or the group code add,
		// the member before the account is created.
		fail("ephemeral", "Ephemeral accounts need a directory",
			"ephemeral accounts are created in an LDAP directory or an LDIF export (target.ldap, target.ldif); a Windows host's local accounts are not supported (docs/methods.md). Declare an existing local account that jitform enables and disables instead.")
		return "", true
	}
	for _, attr := range []string{"name", "dn"} {
		if at.has(attr) {
			fail(attr, "Unsupported argument for an ephemeral account",
				"An ephemeral account is named by pattern and created under base; %s names an existing account.", attr)
		}
	}
	if at.has("rotate_password") && decoded(at, diags, "rotate_password") && !raw.RotatePassword {
		fail("rotate_password", "Ephemeral accounts always get a password",
			"An ephemeral account gets a fresh random password, delivered only to the grant's principal; rotate_password = false cannot be honoured. Remove it.")
	}
	switch d, err := ldap.ParseDN(raw.Base); {
	case at.has("base") && !decoded(at, diags, "base"):
		bad = true
	case !at.has("base") || strings.TrimSpace(raw.Base) == "":
		fail("base", "Missing base", "An ephemeral account needs base = \"ou=jit,dc=example,dc=org\": the container its accounts are created in.")
	case err != nil || len(d.RDNs) == 0:
		fail("base", "Invalid base", "%q is not a distinguished name.", raw.Base)
	default:
		identity = "ephemeral:" + strings.ToLower(d.String())
	}
	if at.has("pattern") && decoded(at, diags, "pattern") {
		if err := checkPattern(raw.Pattern); err != nil {
			fail("pattern", "Invalid pattern", "%v.", err)
		}
	}
	return identity, bad
}

// checkPattern: literal characters from [A-Za-z0-9._-] and the
// placeholders {principal} and {grant}; {grant} is required, so that two
// grants never share (and one never deletes) an account.
func checkPattern(p string) error {
	rest := p
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		lit := rest
		if i >= 0 {
			lit = rest[:i]
		}
		for _, r := range lit {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("pattern %q: %q is not allowed; use letters, digits, '.', '_', '-' and the placeholders {principal} and {grant}", p, r)
			}
		}
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("pattern %q: an unclosed {", p)
		}
		switch ph := rest[i : i+j+1]; ph {
		case "{principal}", "{grant}":
		default:
			return fmt.Errorf("pattern %q: unknown placeholder %s; use {principal} and {grant}", p, ph)
		}
		rest = rest[i+j+1:]
	}
	if !strings.Contains(p, "{grant}") {
		return fmt.Errorf("pattern %q has no {grant}: each grant needs an account of its own, or ending one grant would delete another's", p)
	}
	return nil
}
