package ldap

import (
	"context"
	"fmt"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// userAttrs are read for every principal: enough to map a result entry back
// to the principal that asked for it, and the uid posixGroups need.
var userAttrs = []string{"uid", "sAMAccountName", "userPrincipalName"}

// Resolve maps principals to canonical DNs: DNs are checked to exist, short
// names are looked up per flavor (OpenLDAP uid; AD sAMAccountName, or
// userPrincipalName when the name has an @). One OR-filter search resolves
// up to 100 principals; a custom user_filter, whose matches cannot be told
// apart, costs one search per principal.
func (t *target) Resolve(ctx context.Context, principals []string) (map[string]providers.Resolution, error) {
	out := make(map[string]providers.Resolution, len(principals))
	var mu sync.Mutex
	set := func(p string, r providers.Resolution) {
		mu.Lock()
		out[p] = r
		mu.Unlock()
	}
	var dns, names []string
	for _, p := range principals {
		if strings.TrimSpace(p) == "" || strings.ContainsRune(p, 0) {
			set(p, providers.Resolution{Err: fmt.Errorf("principal %q is not a valid name", p)})
			continue
		}
		if dn.IsDN(p) {
			dns = append(dns, p)
		} else {
			names = append(names, p)
		}
	}

	err := parallel(ctx, chunks(dns, chunk), func(ctx context.Context, ps []string) error {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = "(" + t.dnAttr() + "=" + goldap.EscapeFilter(p) + ")"
		}
		entries, err := t.search(ctx, t.cfg.BaseDN, orFilter(parts), userAttrs)
		if err != nil {
			return fmt.Errorf("resolve %d DN principal(s) on %s: %w", len(ps), t.addr, err)
		}
		found := map[string]*goldap.Entry{}
		for _, e := range entries {
			if c, err := dn.Canonical(e.DN); err == nil {
				found[c] = e
			}
		}
		for _, p := range ps {
			c, err := dn.Canonical(p)
			if err != nil {
				set(p, providers.Resolution{Err: fmt.Errorf("principal %q: %w", p, err)})
				continue
			}
			e, ok := found[c]
			if !ok {
				set(p, providers.Resolution{Err: fmt.Errorf("no entry %q in %s on %s", p, t.cfg.BaseDN, t.addr)})
				continue
			}
			t.rememberUID(c, e.GetAttributeValue("uid"))
			set(p, providers.Resolution{Member: providers.Member{ID: c, Name: e.DN}})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	if t.customUserFilter() {
		// Matches of an arbitrary filter cannot be mapped back to the
		// principal that asked: one search each, bounded by the semaphore.
		err = parallel(ctx, chunks(names, 1), func(ctx context.Context, ps []string) error {
			p := ps[0]
			entries, err := t.search(ctx, t.userBase(), userFilter(t.cfg.UserFilter, p), userAttrs)
			if err != nil {
				return fmt.Errorf("resolve %q on %s: %w", p, t.addr, err)
			}
			set(p, t.pick(p, entries))
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}

	err = parallel(ctx, chunks(names, chunk), func(ctx context.Context, ps []string) error {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = t.nameFilter(p)
		}
		entries, err := t.search(ctx, t.userBase(), orFilter(parts), userAttrs)
		if err != nil {
			return fmt.Errorf("resolve %d principal(s) on %s: %w", len(ps), t.addr, err)
		}
		for _, p := range ps {
			var hits []*goldap.Entry
			for _, e := range entries {
				if t.matches(e, p) {
					hits = append(hits, e)
				}
			}
			set(p, t.pick(p, hits))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// customUserFilter reports a user_filter other than the flavor's default.
// config fills the default in when none is written; that default is what
// nameFilter does (on AD plus userPrincipalName for names with an @), so it
// takes the batched path rather than one search per principal.
func (t *target) customUserFilter() bool {
	def := config.DefaultOpenLDAPUserFilter
	if t.ad() {
		def = config.DefaultADUserFilter
	}
	return t.cfg.UserFilter != "" && t.cfg.UserFilter != def
}

// userFilter fills a user_filter template: every %s gets the escaped name.
func userFilter(tmpl, p string) string {
	return strings.ReplaceAll(tmpl, "%s", goldap.EscapeFilter(p))
}

func (t *target) nameFilter(p string) string {
	e := goldap.EscapeFilter(p)
	if t.ad() {
		if strings.Contains(p, "@") {
			return "(userPrincipalName=" + e + ")"
		}
		return "(sAMAccountName=" + e + ")"
	}
	return "(uid=" + e + ")"
}

// matches says whether entry e is the one principal p asked for, the way
// the server's case-insensitive matching would.
func (t *target) matches(e *goldap.Entry, p string) bool {
	attr := "uid"
	if t.ad() {
		attr = "sAMAccountName"
		if strings.Contains(p, "@") {
			attr = "userPrincipalName"
		}
	}
	for _, v := range e.GetAttributeValues(attr) {
		if strings.EqualFold(v, p) {
			return true
		}
	}
	return false
}

func (t *target) pick(p string, hits []*goldap.Entry) providers.Resolution {
	switch len(hits) {
	case 0:
		return providers.Resolution{Err: fmt.Errorf("no user %q under %s on %s", p, t.userBase(), t.addr)}
	case 1:
		e := hits[0]
		c, err := dn.Canonical(e.DN)
		if err != nil {
			return providers.Resolution{Err: fmt.Errorf("user %q: entry DN %q: %w", p, e.DN, err)}
		}
		t.rememberUID(c, e.GetAttributeValue("uid"))
		return providers.Resolution{Member: providers.Member{ID: c, Name: e.DN}}
	default:
		names := make([]string, 0, len(hits))
		for _, e := range hits {
			names = append(names, e.DN)
		}
		return providers.Resolution{Err: fmt.Errorf("user %q is ambiguous on %s: %d entries match (%s)", p, t.addr, len(hits), strings.Join(names, "; "))}
	}
}

// InGroups answers whether the principal is in each directory group: on
// Active Directory with nested membership (LDAP_MATCHING_RULE_IN_CHAIN), on
// OpenLDAP by the group's own member values (direct membership only).
func (t *target) InGroups(ctx context.Context, principal string, groupDNs []string) (map[string]bool, error) {
	res, err := t.Resolve(ctx, []string{principal})
	if err != nil {
		return nil, err
	}
	r := res[principal]
	if r.Err != nil {
		return nil, r.Err
	}
	out := make(map[string]bool, len(groupDNs))
	for _, g := range groupDNs {
		if !dn.IsDN(g) {
			return nil, fmt.Errorf("eligible entry group:%s is not a DN", g)
		}
		var entries []*goldap.Entry
		if t.ad() {
			// Nested membership, resolved by the server.
			entries, err = t.searchBase(ctx, r.Member.Name, "(memberOf:1.2.840.113556.1.4.1941:="+goldap.EscapeFilter(g)+")", []string{"1.1"})
		} else {
			// Direct membership, read from the group itself, so it works
			// with or without the memberof overlay.
			f := "(|(member=" + goldap.EscapeFilter(r.Member.Name) + ")(uniqueMember=" + goldap.EscapeFilter(r.Member.Name) + ")"
			if u, ok := t.uidOf(r.Member.ID); ok {
				f += "(memberUid=" + goldap.EscapeFilter(u) + ")"
			}
			entries, err = t.searchBase(ctx, g, f+")", []string{"1.1"})
		}
		if err != nil {
			return nil, fmt.Errorf("check %s in %s on %s: %w", principal, g, t.addr, err)
		}
		out[g] = len(entries) == 1
	}
	return out, nil
}

var _ providers.EligibilityChecker = (*target)(nil)
