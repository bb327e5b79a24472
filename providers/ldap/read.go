package ldap

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// shape is how a group entry holds its members.
type shape struct {
	class string // groupOfNames, groupOfUniqueNames, group, posixGroup, sudoRole
	attr  string // member, uniqueMember, memberUid, sudoUser
}

// byUID: the attribute holds user names (uids), not DNs: a posixGroup's
// memberUid, a sudoRole's sudoUser.
func (s shape) byUID() bool { return s.attr == "memberUid" || s.attr == "sudoUser" }

// sudo: a sudo-ldap sudoRole entry (sudo_role blocks).
func (s shape) sudo() bool { return s.class == "sudoRole" }

// mustHaveMember: these object classes require at least one member value.
func (s shape) mustHaveMember() bool {
	return s.class == "groupOfNames" || s.class == "groupOfUniqueNames"
}

func shapeOf(e *goldap.Entry) (shape, error) {
	has := func(c string) bool {
		for _, v := range e.GetAttributeValues("objectClass") {
			if strings.EqualFold(v, c) {
				return true
			}
		}
		return false
	}
	switch {
	case has("groupOfNames"):
		return shape{"groupOfNames", "member"}, nil
	case has("groupOfUniqueNames"):
		return shape{"groupOfUniqueNames", "uniqueMember"}, nil
	case has("group"):
		return shape{"group", "member"}, nil
	case has("posixGroup"):
		return shape{"posixGroup", "memberUid"}, nil
	case has("sudoRole"):
		// sudo-ldap: sudoUser holds user names (uids), like memberUid.
		return shape{"sudoRole", "sudoUser"}, nil
	}
	return shape{}, fmt.Errorf("entry %q is not a group jitform can manage: objectClass %v has none of groupOfNames, groupOfUniqueNames, group, posixGroup, sudoRole",
		e.DN, e.GetAttributeValues("objectClass"))
}

// kindMatches checks that the entry read for g is of g's kind: a
// sudo_role must be a sudoRole entry and a group must not be one, so that
// a mistyped DN never turns a group's members into sudo rules or back.
func kindMatches(g *config.Group, ge *groupEntry) error {
	switch kind := g.SetKind(); {
	case kind == config.SetSudoRole && !ge.shape.sudo():
		return fmt.Errorf("%s: entry %q is a %s, not a sudoRole", g.Addr, ge.dn, ge.shape.class)
	case kind == config.SetGroup && ge.shape.sudo():
		return fmt.Errorf("%s: entry %q is a sudoRole; declare it as a sudo_role block", g.Addr, ge.dn)
	case kind != config.SetGroup && kind != config.SetSudoRole:
		return fmt.Errorf("%s: a %s is not supported by the ldap provider", g.Addr, kind)
	}
	return nil
}

// groupEntry is a group as read: its shape and raw member values.
type groupEntry struct {
	dn     string // as the server returned it
	id     string // the entry's identity: entryUUID / objectGUID, else its canonical DN
	shape  shape
	values []string
	// expires: when each TTL link (ttl_links) expires, by key; permanent
	// links are absent.
	expires map[string]time.Time
	// notBefore, notAfter: a sudoRole's sudoNotBefore and sudoNotAfter
	// values as read (the second lock jitform writes on sudo roles).
	notBefore, notAfter []string
}

// idAttr is the attribute that identifies an entry whatever its DN is
// written as: entryUUID (RFC 4530, OpenLDAP) or Active Directory's objectGUID.
func (t *target) idAttr() string {
	if t.ad() {
		return "objectGUID"
	}
	return "entryUUID"
}

// entryID is e's identity: its entryUUID or objectGUID when the server
// sent one, else the canonical form of the DN the server returned.
func (t *target) entryID(e *goldap.Entry) string {
	if v := e.GetRawAttributeValue(t.idAttr()); len(v) > 0 {
		return t.idAttr() + ":" + hex.EncodeToString(v)
	}
	if c, err := dn.Canonical(e.DN); err == nil {
		return "dn:" + c
	}
	return "dn:" + strings.ToLower(e.DN)
}

// Read reads every group with one OR-filter search per 100 groups named by
// DN (posixGroups named by cn alike), then maps memberUids to DNs with one
// search per 100 uids. A group that is missing or not a group carries its
// error; the others are read. The group's placeholder is not reported.
func (t *target) Read(ctx context.Context, groups []*config.Group) (map[string]providers.Observation, error) {
	entries, errs, err := t.readGroups(ctx, groups)
	if err != nil {
		return nil, fmt.Errorf("read %d group(s) on %s: %w", len(groups), t.addr, err)
	}
	// memberUids of all posixGroups, mapped to DNs in one batch.
	var uids []string
	seen := map[string]bool{}
	for _, ge := range entries {
		if ge.shape.byUID() {
			for _, v := range ge.values {
				if !seen[v] {
					seen[v] = true
					uids = append(uids, v)
				}
			}
		}
	}
	byUID, err := t.dnsOfUIDs(ctx, uids)
	if err != nil {
		return nil, fmt.Errorf("map memberUid values to entries on %s: %w", t.addr, err)
	}

	out := make(map[string]providers.Observation, len(groups))
	for _, g := range groups {
		if e := errs[g.Addr]; e != nil {
			out[g.Addr] = providers.Observation{Err: e}
			continue
		}
		ge := entries[g.Addr]
		// The placeholder keeps a groupOfNames non-empty; it is not a
		// member to plan for (an exclusive group would remove it).
		placeholder := ""
		if p := g.Attributes.Placeholder; p != "" {
			placeholder, _ = dn.Canonical(p)
		}
		obs := providers.Observation{Members: make([]providers.Member, 0, len(ge.values))}
		for _, v := range ge.values {
			if ge.shape.byUID() {
				if m, ok := byUID[v]; ok {
					obs.Members = append(obs.Members, m)
				} else {
					obs.Members = append(obs.Members, providers.Member{ID: v, Name: ge.shape.attr + "=" + v})
				}
				continue
			}
			c, err := dn.Canonical(v)
			if err != nil {
				// An unparsable value is still a member: keep it as written
				// so an exclusive group can remove it.
				obs.Members = append(obs.Members, providers.Member{ID: v, Name: v})
				continue
			}
			if c == placeholder {
				continue
			}
			obs.Members = append(obs.Members, providers.Member{ID: c, Name: v, Expires: ge.expires[c]})
		}
		out[g.Addr] = obs
	}
	return out, nil
}

func (t *target) memberAttrs() []string {
	attrs := []string{"objectClass", "cn", "uniqueMember", "memberUid", t.idAttr()}
	if !t.ad() {
		attrs = append(attrs, "sudoUser", "sudoNotBefore", "sudoNotAfter")
	}
	if t.ad() && t.step > 0 {
		return append(attrs, fmt.Sprintf("member;range=0-%d", t.step-1))
	}
	return append(attrs, "member")
}

// readGroups finds each group's entry. errs holds per-group problems.
func (t *target) readGroups(ctx context.Context, groups []*config.Group) (map[string]*groupEntry, map[string]error, error) {
	var mu sync.Mutex
	entries := map[string]*groupEntry{}
	errs := map[string]error{}
	fail := func(g *config.Group, err error) {
		mu.Lock()
		errs[g.Addr] = err
		mu.Unlock()
	}

	byDN := map[string][]*config.Group{} // canonical DN -> groups (normally one)
	var dnList []string
	var byName []*config.Group
	for _, g := range groups {
		switch {
		case g.DN != "":
			c, err := dn.Canonical(g.DN)
			if err != nil {
				fail(g, fmt.Errorf("group %s: dn %q: %w", g.Addr, g.DN, err))
				continue
			}
			if _, ok := byDN[c]; !ok {
				dnList = append(dnList, g.DN)
			}
			byDN[c] = append(byDN[c], g)
		case g.GroupName != "":
			byName = append(byName, g)
		default:
			fail(g, fmt.Errorf("group %s names neither dn nor name", g.Addr))
		}
	}

	err := parallel(ctx, chunks(dnList, chunk), func(ctx context.Context, ds []string) error {
		parts := make([]string, len(ds))
		for i, d := range ds {
			parts[i] = "(" + t.dnAttr() + "=" + goldap.EscapeFilter(d) + ")"
		}
		found, err := t.search(ctx, t.cfg.BaseDN, orFilter(parts), t.memberAttrs())
		if err != nil {
			return err
		}
		got := map[string]*goldap.Entry{}
		for _, e := range found {
			if c, err := dn.Canonical(e.DN); err == nil {
				got[c] = e
			}
		}
		for _, d := range ds {
			c, _ := dn.Canonical(d)
			e, ok := got[c]
			gs := byDN[c]
			if !ok && mayFoldDifferently(c) {
				// The server may match the DN as written where our
				// canonical form does not (its own normalisation of
				// characters beyond printable ASCII): ask it for that
				// DN and take the entry under its own name.
				e, err = t.lookupAsWritten(ctx, d)
				if err != nil {
					return err
				}
				ok = e != nil
			}
			if !ok {
				for _, g := range gs {
					fail(g, fmt.Errorf("group %s: no entry %q under %s on %s", g.Addr, d, t.cfg.BaseDN, t.addr))
				}
				continue
			}
			ge, err := t.groupEntry(ctx, e)
			for _, g := range gs {
				if err != nil {
					fail(g, fmt.Errorf("group %s: %w", g.Addr, err))
					continue
				}
				if err := kindMatches(g, ge); err != nil {
					fail(g, err)
					continue
				}
				mu.Lock()
				entries[g.Addr] = ge
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	err = parallel(ctx, chunks(byName, chunk), func(ctx context.Context, gs []*config.Group) error {
		parts := make([]string, len(gs))
		for i, g := range gs {
			parts[i] = "(cn=" + goldap.EscapeFilter(g.GroupName) + ")"
		}
		found, err := t.search(ctx, t.cfg.BaseDN, "(&(objectClass=posixGroup)"+orFilter(parts)+")", t.memberAttrs())
		if err != nil {
			return err
		}
		for _, g := range gs {
			var hits []*goldap.Entry
			for _, e := range found {
				for _, cn := range e.GetAttributeValues("cn") {
					if strings.EqualFold(cn, g.GroupName) {
						hits = append(hits, e)
						break
					}
				}
			}
			if len(hits) != 1 {
				fail(g, fmt.Errorf("group %s: %d posixGroups with cn=%q under %s on %s; set dn instead", g.Addr, len(hits), g.GroupName, t.cfg.BaseDN, t.addr))
				continue
			}
			ge, err := t.groupEntry(ctx, hits[0])
			if err == nil {
				err = kindMatches(g, ge)
			}
			if err != nil {
				fail(g, fmt.Errorf("group %s: %w", g.Addr, err))
				continue
			}
			mu.Lock()
			entries[g.Addr] = ge
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	t.refuseAliases(groups, entries, fail)
	return entries, errs, nil
}

// mayFoldDifferently: a canonical DN outside printable ASCII (or with a
// hex-escaped byte) may match differently on the server than in our
// canonical form (Unicode and control characters are where servers'
// preparation rules differ); for printable ASCII our case folding and space
// handling are the server's, so a miss is a miss and costs no extra read.
func mayFoldDifferently(c string) bool {
	for i := 0; i < len(c); i++ {
		b := c[i]
		if b < 0x20 || b > 0x7e {
			return true
		}
		if b == '\\' && i+2 < len(c) && isHex(c[i+1]) && isHex(c[i+2]) {
			return true
		}
	}
	return false
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// lookupAsWritten reads the entry the server finds at d (a base-scope
// search, so the server's own DN matching decides), if it lies under
// base_dn; nil when there is none.
func (t *target) lookupAsWritten(ctx context.Context, d string) (*goldap.Entry, error) {
	e, err := t.baseRead(ctx, d, t.memberAttrs())
	if err != nil || e == nil {
		if err != nil && goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax) {
			return nil, nil
		}
		return nil, err
	}
	base, err1 := goldap.ParseDN(t.cfg.BaseDN)
	got, err2 := goldap.ParseDN(e.DN)
	if err1 != nil || err2 != nil || !(base.AncestorOfFold(got) || base.EqualFold(got)) {
		return nil, nil
	}
	return e, nil
}

// refuseAliases fails every group block that resolves to the same entry as
// another block (two spellings of one DN: a Unicode lookalike, case,
// spacing, anything the server normalises): planned separately, each
// would undo the other's changes on every apply. Entries are compared by
// entryUUID / objectGUID (else the DN the server returned).
func (t *target) refuseAliases(groups []*config.Group, entries map[string]*groupEntry, fail func(*config.Group, error)) {
	byID := map[string][]*config.Group{}
	var order []string
	seen := map[string]bool{}
	for _, g := range groups {
		ge := entries[g.Addr]
		if ge == nil || seen[g.Addr] {
			continue
		}
		seen[g.Addr] = true
		if _, ok := byID[ge.id]; !ok {
			order = append(order, ge.id)
		}
		byID[ge.id] = append(byID[ge.id], g)
	}
	for _, id := range order {
		gs := byID[id]
		if len(gs) < 2 {
			continue
		}
		names := make([]string, len(gs))
		for i, g := range gs {
			names[i] = fmt.Sprintf("%s (%s)", g.Addr, groupRef(g))
		}
		ge := entries[gs[0].Addr]
		err := fmt.Errorf("groups %s resolve to one directory entry %q (%s) on %s: refusing all of them, since planned separately each would undo the other's changes; name the group in one block only",
			strings.Join(names, " and "), ge.dn, strings.Replace(ge.id, ":", " ", 1), t.addr)
		for _, g := range gs {
			delete(entries, g.Addr)
			fail(g, err)
		}
	}
}

// groupRef is how a group block names its entry.
func groupRef(g *config.Group) string {
	if g.DN != "" {
		return fmt.Sprintf("dn %q", g.DN)
	}
	return fmt.Sprintf("name %q", g.GroupName)
}

// groupEntry takes a search result apart, following ranged retrieval.
func (t *target) groupEntry(ctx context.Context, e *goldap.Entry) (*groupEntry, error) {
	s, err := shapeOf(e)
	if err != nil {
		return nil, err
	}
	ge := &groupEntry{dn: e.DN, id: t.entryID(e), shape: s}
	if s.attr != "member" {
		ge.values = e.GetAttributeValues(s.attr)
		if s.sudo() {
			ge.notBefore, ge.notAfter = e.GetAttributeValues("sudoNotBefore"), e.GetAttributeValues("sudoNotAfter")
		}
		return ge, nil
	}
	vals, err := t.rangedMembers(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("read members of %q: %w", e.DN, err)
	}
	if t.cfg.TTLLinks {
		// Read with LDAP_SERVER_LINK_TTL: a TTL link is "<TTL=N>,DN".
		now := t.clock()
		for i, v := range vals {
			if n, d, ok := splitTTL(v); ok {
				if ge.expires == nil {
					ge.expires = map[string]time.Time{}
				}
				vals[i] = d
				ge.expires[t.key(s, d)] = now.Add(time.Duration(n) * time.Second)
			}
		}
	}
	ge.values = vals
	return ge, nil
}

// rangedMembers collects "member", following Active Directory's ranged
// retrieval: a large group comes back as member;range=0-1499 and the rest
// must be asked for until a range ends in "*". A server that ignores range
// options (OpenLDAP returns nothing for them) gets a plain "member" read.
func (t *target) rangedMembers(ctx context.Context, e *goldap.Entry) ([]string, error) {
	var vals []string
	next, done, ranged := -1, true, false
	for _, a := range e.Attributes {
		name := strings.ToLower(a.Name)
		if name == "member" {
			vals = append(vals, a.Values...)
			continue
		}
		if lo, hi, ok := parseRange(name); ok && lo == 0 {
			ranged = true
			vals = append(vals, a.Values...)
			if hi >= 0 {
				next, done = hi+1, false
			}
		}
	}
	if t.step > 0 && !ranged && len(vals) == 0 {
		// Asked for a range and got no ranged attribute: the server
		// ignores ranges. Read the plain attribute.
		re, err := t.baseRead(ctx, e.DN, []string{"member"})
		if err != nil || re == nil {
			return nil, err
		}
		return re.GetAttributeValues("member"), nil
	}
	for !done {
		want := fmt.Sprintf("member;range=%d-*", next)
		if t.step > 0 {
			want = fmt.Sprintf("member;range=%d-%d", next, next+t.step-1)
		}
		re, err := t.baseRead(ctx, e.DN, []string{want})
		if err != nil {
			return nil, err
		}
		if re == nil {
			return nil, fmt.Errorf("entry vanished during ranged retrieval")
		}
		got := false
		for _, a := range re.Attributes {
			lo, hi, ok := parseRange(strings.ToLower(a.Name))
			if !ok || lo != next {
				continue
			}
			got = true
			vals = append(vals, a.Values...)
			if hi < 0 {
				done = true
			} else {
				next = hi + 1
			}
		}
		if !got {
			// Past the end: some servers answer an empty range this way.
			done = true
		}
	}
	return vals, nil
}

// parseRange reads "member;range=LO-HI"; hi is -1 for "*".
func parseRange(name string) (lo, hi int, ok bool) {
	const p = "member;range="
	if !strings.HasPrefix(name, p) {
		return 0, 0, false
	}
	a, b, found := strings.Cut(name[len(p):], "-")
	if !found {
		return 0, 0, false
	}
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	if b == "*" {
		return lo, -1, true
	}
	hi, err = strconv.Atoi(b)
	if err != nil {
		return 0, 0, false
	}
	return lo, hi, true
}

// dnsOfUIDs maps uids to the one user entry carrying each.
func (t *target) dnsOfUIDs(ctx context.Context, uids []string) (map[string]providers.Member, error) {
	out := map[string]providers.Member{}
	var mu sync.Mutex
	err := parallel(ctx, chunks(uids, chunk), func(ctx context.Context, us []string) error {
		parts := make([]string, len(us))
		for i, u := range us {
			parts[i] = "(uid=" + goldap.EscapeFilter(u) + ")"
		}
		found, err := t.search(ctx, t.userBase(), orFilter(parts), []string{"uid"})
		if err != nil {
			return err
		}
		count := map[string]int{}
		hit := map[string]*goldap.Entry{}
		for _, e := range found {
			for _, v := range e.GetAttributeValues("uid") {
				count[v]++
				hit[v] = e
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range us {
			if count[u] != 1 {
				continue
			}
			c, err := dn.Canonical(hit[u].DN)
			if err != nil {
				continue
			}
			t.rememberUID(c, u)
			out[u] = providers.Member{ID: c, Name: hit[u].DN}
		}
		return nil
	})
	return out, err
}
