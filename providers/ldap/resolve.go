package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	ber "github.com/go-asn1-ber/asn1-ber"
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
// up to 100 principals, with a user_filter too when its matches can be
// mapped back (batchKey); otherwise a user_filter costs one search per
// principal.
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
		key, ok := batchKey(t.cfg.UserFilter)
		if !ok {
			// Matches of this filter cannot be mapped back to the
			// principal that asked: one search each, bounded.
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
		attrs := append(slices.Clone(userAttrs), key.attr)
		err = parallel(ctx, chunks(names, chunk), func(ctx context.Context, ps []string) error {
			parts := make([]string, len(ps))
			for i, p := range ps {
				parts[i] = userFilter(t.cfg.UserFilter, p)
			}
			entries, err := t.search(ctx, t.userBase(), orFilter(parts), attrs)
			if err != nil {
				return fmt.Errorf("resolve %d principal(s) with user_filter on %s: %w", len(ps), t.addr, err)
			}
			for _, p := range ps {
				var hits []*goldap.Entry
				for _, e := range entries {
					if key.matches(e, p) {
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

// filterKey says how to tell, from a result entry, which principal's
// user_filter it matched: the filter's principal sits in one equality
// assertion attr=prefix+principal+suffix, under nothing but ANDs. Then an
// entry matches filter(p) exactly when it matches the rest of the filter
// (the same for every p) and has that value, so an OR of many principals'
// filters is one search whose entries map back by that attribute.
type filterKey struct{ attr, prefix, suffix string }

// batchKey finds the filterKey of a user_filter template, or reports that
// its matches cannot be told apart (the principal under OR or NOT, in a
// substring, ordering or extensible match, or more than once).
func batchKey(tmpl string) (filterKey, bool) {
	const mark = "jitformPrincipalMark7f3a"
	f, err := goldap.CompileFilter(strings.ReplaceAll(tmpl, "%s", mark))
	if err != nil {
		return filterKey{}, false
	}
	var keys []filterKey
	seen := 0
	var walk func(p *ber.Packet, andOnly bool)
	walk = func(p *ber.Packet, andOnly bool) {
		switch p.Tag {
		case goldap.FilterAnd, goldap.FilterOr, goldap.FilterNot:
			for _, c := range p.Children {
				walk(c, andOnly && p.Tag == goldap.FilterAnd)
			}
			return
		}
		for _, c := range p.Children {
			if strings.Contains(string(c.Bytes()), mark) {
				seen++
			}
		}
		if p.Tag != goldap.FilterEqualityMatch || !andOnly || len(p.Children) != 2 {
			return
		}
		attr, _ := p.Children[0].Value.(string)
		val, _ := p.Children[1].Value.(string)
		if before, after, ok := strings.Cut(val, mark); ok && !strings.Contains(attr, mark) {
			keys = append(keys, filterKey{attr: attr, prefix: before, suffix: after})
		}
	}
	walk(f, true)
	if seen != 1 || len(keys) != 1 {
		return filterKey{}, false
	}
	return keys[0], true
}

// matches compares case-insensitively, as the directory's string
// matching rules do; where the server would also ignore extra spaces this
// is stricter, so a doubtful entry is left unmatched, never matched.
func (k filterKey) matches(e *goldap.Entry, p string) bool {
	for _, v := range e.GetEqualFoldAttributeValues(k.attr) {
		if strings.EqualFold(v, k.prefix+p+k.suffix) {
			return true
		}
	}
	return false
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
// Active Directory with nested membership (LDAP_MATCHING_RULE_IN_CHAIN on
// the group's member), on OpenLDAP by the group's own member, uniqueMember
// or memberUid values (direct membership only; works with or without the
// memberof overlay). One search answers up to 100 groups under base_dn: it
// returns those of the groups the principal is in. A group outside base_dn
// costs a base-scope search of its own.
func (t *target) InGroups(ctx context.Context, principal string, groupDNs []string) (map[string]bool, error) {
	res, err := t.Resolve(ctx, []string{principal})
	if err != nil {
		return nil, err
	}
	r := res[principal]
	if r.Err != nil {
		return nil, r.Err
	}
	base, err := goldap.ParseDN(t.cfg.BaseDN)
	if err != nil {
		return nil, fmt.Errorf("base_dn %q of %s: %w", t.cfg.BaseDN, t.addr, err)
	}
	out := make(map[string]bool, len(groupDNs))
	byCanon := map[string][]string{}
	var under, outside []string
	for _, g := range groupDNs {
		out[g] = false
		c, err := dn.Canonical(g)
		if err != nil {
			return nil, fmt.Errorf("eligible entry group:%s is not a DN: %w", g, err)
		}
		if _, ok := byCanon[c]; !ok {
			if pg, _ := goldap.ParseDN(g); pg != nil && (base.AncestorOfFold(pg) || base.EqualFold(pg)) {
				under = append(under, g)
			} else {
				outside = append(outside, g)
			}
		}
		byCanon[c] = append(byCanon[c], g)
	}
	var mu sync.Mutex
	mark := func(entries []*goldap.Entry) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			if c, err := dn.Canonical(e.DN); err == nil {
				for _, g := range byCanon[c] {
					out[g] = true
				}
			}
		}
	}
	cond := t.memberCondition(r.Member)
	err = parallel(ctx, chunks(under, chunk), func(ctx context.Context, gs []string) error {
		parts := make([]string, len(gs))
		for i, g := range gs {
			parts[i] = "(" + t.dnAttr() + "=" + goldap.EscapeFilter(g) + ")"
		}
		entries, err := t.search(ctx, t.cfg.BaseDN, "(&"+orFilter(parts)+cond+")", []string{"1.1"})
		if err != nil {
			return fmt.Errorf("check %s in %d group(s) on %s: %w", principal, len(gs), t.addr, err)
		}
		mark(entries)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = parallel(ctx, chunks(outside, 1), func(ctx context.Context, gs []string) error {
		entries, err := t.searchBase(ctx, gs[0], cond, []string{"1.1"})
		if err != nil {
			return fmt.Errorf("check %s in %s on %s: %w", principal, gs[0], t.addr, err)
		}
		mark(entries)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// memberCondition is a filter that a group entry matches when m is in it.
func (t *target) memberCondition(m providers.Member) string {
	d := goldap.EscapeFilter(m.Name)
	if t.ad() {
		// Nested membership, resolved by the server.
		return "(member:1.2.840.113556.1.4.1941:=" + d + ")"
	}
	f := "(|(member=" + d + ")(uniqueMember=" + d + ")"
	if u, ok := t.uidOf(m.ID); ok {
		f += "(memberUid=" + goldap.EscapeFilter(u) + ")"
	}
	return f + ")"
}

var _ providers.EligibilityChecker = (*target)(nil)
