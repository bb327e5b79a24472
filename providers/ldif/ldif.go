// Package ldif is the "ldif" target: an exported directory in an LDIF
// file, read and changed as if it were an LDAP server. It is how the
// quickstart runs without a server and how an auditor plans against last
// night's export.
//
// Identities: a member's ID is its canonical DN (internal/dn). For a
// posixGroup, whose memberUid values are uids, Read maps each memberUid to
// the DN of the one entry with that uid, so both group shapes compare by
// DN and a principal resolves the same way whatever the group's shape. A
// memberUid with no (or more than one) matching entry is reported with the
// uid itself as ID, so an exclusive group still removes it.
//
// Parsing and writing use github.com/go-ldap/ldif. What it cannot keep:
// comments, and the order of attributes inside an entry (it sorts them by
// name); entry order and every value are kept. A file it would encode
// wrongly is refused before anything is written.
package ldif

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/internal/parallel"
	"github.com/jitform/jitform/providers"
)

type target struct {
	addr     string
	path     string
	flavor   string
	progress func(string, ...any)

	mu  sync.Mutex // guards dir; Apply replaces it after a write
	dir *directory
}

// Open parses the target's LDIF file. A malformed file is an error naming
// the file and line.
func Open(ctx context.Context, t *config.Target, opts providers.Options) (providers.Target, error) {
	if t.LDIF == nil {
		return nil, fmt.Errorf("%s: not an ldif target", t.Addr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := t.LDIF.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(opts.BaseDir, p)
	}
	d, err := loadFile(p)
	if err != nil {
		return nil, err
	}
	flavor := t.LDIF.Flavor
	if flavor == "" {
		flavor = config.FlavorOpenLDAP
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	return &target{addr: t.Addr, path: p, flavor: flavor, progress: progress, dir: d}, nil
}

func (t *target) Close() error { return nil }

func (t *target) current() *directory {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dir
}

// Resolve: a principal that parses as a DN names that entry; otherwise
// openldap looks up uid, active_directory sAMAccountName or
// userPrincipalName, case-insensitively (as the servers match them).
func (t *target) Resolve(ctx context.Context, principals []string) (map[string]providers.Resolution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := t.current()
	out := make(map[string]providers.Resolution, len(principals))
	for _, p := range principals {
		i, err := t.lookup(d, p)
		if err != nil {
			out[p] = providers.Resolution{Err: err}
			continue
		}
		out[p] = providers.Resolution{Member: providers.Member{ID: d.canon[i], Name: d.entries[i].DN}}
	}
	return out, nil
}

// lookup finds the one entry a principal names.
func (t *target) lookup(d *directory, p string) (int, error) {
	if dn.IsDN(p) {
		c, _ := dn.Canonical(p)
		if i, ok := d.byDN[c]; ok {
			return i, nil
		}
		return -1, fmt.Errorf("principal %q: no entry with that DN in %s", p, d.path)
	}
	attrs := []string{"uid"}
	if t.flavor == config.FlavorActiveDirectory {
		attrs = []string{"sAMAccountName", "userPrincipalName"}
	}
	var hits []int
	for _, a := range attrs {
		for _, i := range d.withName(a, p) {
			if !slices.Contains(hits, i) {
				hits = append(hits, i)
			}
		}
	}
	slices.Sort(hits)
	switch len(hits) {
	case 0:
		return -1, fmt.Errorf("principal %q: no entry with %s=%q in %s", p, strings.Join(attrs, " or "), p, d.path)
	case 1:
		return hits[0], nil
	}
	dns := make([]string, 0, 3)
	for _, i := range hits[:min(3, len(hits))] {
		dns = append(dns, d.entries[i].DN)
	}
	return -1, fmt.Errorf("principal %q is ambiguous in %s: %d entries match (%s); write the DN instead", p, d.path, len(hits), strings.Join(dns, "; "))
}

// values returns the values of every attribute named name, in any case.
func values(e *goldap.Entry, name string) []string {
	var out []string
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			out = append(out, a.Values...)
		}
	}
	return out
}

// shape is how a group entry stores its members.
type shape struct {
	class string // objectClass that decided it
	attr  string // member attribute
	byUID bool   // posixGroup: values are uids, not DNs
	// mustHave: the schema requires at least one value (groupOfNames,
	// groupOfUniqueNames), so the last member cannot be removed.
	mustHave bool
}

// shapeOf decides the shape from objectClass. A DN-valued class wins
// over posixGroup for rfc2307bis entries that carry both.
func shapeOf(e *goldap.Entry) (shape, error) {
	classes := values(e, "objectClass")
	has := func(c string) bool {
		return slices.ContainsFunc(classes, func(v string) bool { return strings.EqualFold(v, c) })
	}
	switch {
	case has("groupOfNames"):
		return shape{class: "groupOfNames", attr: "member", mustHave: true}, nil
	case has("groupOfUniqueNames"):
		return shape{class: "groupOfUniqueNames", attr: "uniqueMember", mustHave: true}, nil
	case has("group"):
		return shape{class: "group", attr: "member"}, nil
	case has("posixGroup"):
		return shape{class: "posixGroup", attr: "memberUid", byUID: true}, nil
	case has("sudoRole"):
		// sudo-ldap: sudoUser holds user names (uids), like memberUid.
		return shape{class: "sudoRole", attr: "sudoUser", byUID: true}, nil
	}
	return shape{}, fmt.Errorf("entry %q is not a group jitform can manage: objectClass %v has none of groupOfNames, groupOfUniqueNames, group, posixGroup, sudoRole", e.DN, classes)
}

// setShape is shapeOf for the managed set g: a sudo_role must be a
// sudoRole entry and a group must not be one, so that a mistyped DN never
// turns a group's members into sudo rules or back.
func setShape(e *goldap.Entry, g *config.Group) (shape, error) {
	s, err := shapeOf(e)
	if err != nil {
		return s, err
	}
	switch kind := g.SetKind(); {
	case kind == config.SetSudoRole && s.class != "sudoRole":
		return s, fmt.Errorf("%s: entry %q is a %s, not a sudoRole", g.Addr, e.DN, s.class)
	case kind == config.SetGroup && s.class == "sudoRole":
		return s, fmt.Errorf("%s: entry %q is a sudoRole; declare it as a sudo_role block", g.Addr, e.DN)
	case kind != config.SetGroup && kind != config.SetSudoRole:
		return s, fmt.Errorf("%s: a %s is not supported by this provider", g.Addr, kind)
	}
	return s, nil
}

// SetKinds: an LDIF directory holds groups and sudoRoles (rights are
// Windows-only).
func (t *target) SetKinds() []string { return []string{config.SetGroup, config.SetSudoRole} }

// findGroup finds a group's entry: by DN, or for a posixGroup named only
// by name, by cn.
func findGroup(d *directory, g *config.Group) (int, error) {
	if g.DN != "" {
		c, err := dn.Canonical(g.DN)
		if err != nil {
			return -1, fmt.Errorf("group %s: dn: %w", g.Addr, err)
		}
		i, ok := d.byDN[c]
		if !ok {
			return -1, fmt.Errorf("group %s: no entry %q in %s", g.Addr, g.DN, d.path)
		}
		return i, nil
	}
	if g.GroupName == "" {
		return -1, fmt.Errorf("group %s: neither dn nor name is set", g.Addr)
	}
	var hits []int
	for i, e := range d.entries {
		if s, err := shapeOf(e); err == nil && s.class == "posixGroup" &&
			slices.ContainsFunc(values(e, "cn"), func(v string) bool { return strings.EqualFold(v, g.GroupName) }) {
			hits = append(hits, i)
		}
	}
	switch len(hits) {
	case 0:
		return -1, fmt.Errorf("group %s: no posixGroup with cn=%q in %s", g.Addr, g.GroupName, d.path)
	case 1:
		return hits[0], nil
	}
	return -1, fmt.Errorf("group %s: %d posixGroups with cn=%q in %s; set dn instead", g.Addr, len(hits), g.GroupName, d.path)
}

// uniqueMember values may carry an optional "#'0101'B" UID (nameAndOptionalUID).
var optionalUID = regexp.MustCompile(`#'[01]*'B$`)

// memberID is the comparison key of one stored member value, and the
// name a person reads.
func memberID(d *directory, s shape, v string) (providers.Member, error) {
	if s.byUID {
		if hits := d.withName("uid", v); len(hits) == 1 {
			return providers.Member{ID: d.canon[hits[0]], Name: d.entries[hits[0]].DN}, nil
		}
		return providers.Member{ID: v, Name: v}, nil
	}
	raw := v
	if s.attr == "uniqueMember" {
		raw = optionalUID.ReplaceAllString(v, "")
	}
	c, err := dn.Canonical(raw)
	if err != nil {
		return providers.Member{}, err
	}
	return providers.Member{ID: c, Name: v}, nil
}

// Read reports each group's members, keyed by group address. The
// group's placeholder (config placeholder) is not reported: it is there
// only to keep a groupOfNames non-empty, not as a member to plan for.
func (t *target) Read(ctx context.Context, groups []*config.Group) (map[string]providers.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := t.current()
	// d is never modified (Apply replaces it): the groups are read on
	// every core, each into its own slot.
	obs := make([]providers.Observation, len(groups))
	parallel.Chunks(len(groups), 512, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := groups[i]
			ms, err := readGroup(d, g)
			if err != nil {
				obs[i] = providers.Observation{Err: fmt.Errorf("read group %s on %s: %w", g.Addr, t.addr, err)}
				continue
			}
			obs[i] = providers.Observation{Members: ms}
		}
	})
	out := make(map[string]providers.Observation, len(groups))
	for i, g := range groups {
		out[g.Addr] = obs[i]
	}
	return out, nil
}

func readGroup(d *directory, g *config.Group) ([]providers.Member, error) {
	i, err := findGroup(d, g)
	if err != nil {
		return nil, err
	}
	e := d.entries[i]
	s, err := setShape(e, g)
	if err != nil {
		return nil, err
	}
	placeholder := canonicalOrEmpty(g.Attributes.Placeholder)
	ms := []providers.Member{}
	seen := map[string]bool{}
	for _, v := range values(e, s.attr) {
		m, err := memberID(d, s, v)
		if err != nil {
			return nil, fmt.Errorf("%s value %q of %q: %w", s.attr, v, e.DN, err)
		}
		if seen[m.ID] || m.ID == placeholder {
			continue
		}
		seen[m.ID] = true
		ms = append(ms, m)
	}
	return ms, nil
}

func canonicalOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	c, err := dn.Canonical(s)
	if err != nil {
		return ""
	}
	return c
}

// Apply re-reads the file (someone may have changed it since Read), makes
// every change in memory, then replaces the file atomically once. Within
// a group, adds go before removals so that a swap never empties it.
func (t *target) Apply(ctx context.Context, changes []providers.GroupChange) ([]providers.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fresh, err := loadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("apply on %s: %w", t.addr, err)
	}
	d := fresh.clone()
	var outs []providers.Outcome
	changed := false
	for _, gc := range changes {
		o, ch := applyGroup(d, gc)
		outs = append(outs, o...)
		changed = changed || ch
	}
	if !changed {
		t.dir = fresh
		return outs, nil
	}
	switch st, err := t.commit(d, fresh); st {
	case providers.Unknown:
		markDone(outs, st, err)
	case providers.Failed:
		markDone(outs, st, fmt.Errorf("apply on %s: %w", t.addr, err))
	}
	return outs, nil
}

// commit writes d over the file and keeps it as the target's directory.
// Done: written and durable. Unknown: the new file is in place but may not
// survive a crash. Failed: the file was not replaced, and the target keeps
// fresh, the directory as read before the changes.
func (t *target) commit(d, fresh *directory) (providers.Status, error) {
	data, err := d.marshal()
	if err == nil {
		t.progress("%s: writing %s", t.addr, t.path)
		var renamed bool
		renamed, err = writeAtomic(t.path, data)
		if renamed {
			t.dir = d
			if d.structural() {
				// Entries were added or deleted: index the file as written.
				if nd, perr := parseLDIF(t.path, data); perr == nil {
					t.dir = nd
				}
			}
			if err != nil {
				return providers.Unknown, err
			}
			return providers.Done, nil
		}
	}
	t.dir = fresh
	return providers.Failed, err
}

// markDone turns every Done outcome into st with err: the write that
// would have made them did not (surely) happen.
func markDone(outs []providers.Outcome, st providers.Status, err error) {
	for i := range outs {
		if outs[i].Status == providers.Done {
			outs[i].Status, outs[i].Err = st, err
		}
	}
}

// applyGroup makes one group's changes in d and reports whether d changed.
func applyGroup(d *directory, gc providers.GroupChange) ([]providers.Outcome, bool) {
	g := gc.Group
	outs := make([]providers.Outcome, 0, len(gc.Changes))
	fail := func(err error) ([]providers.Outcome, bool) {
		for _, c := range gc.Changes {
			outs = append(outs, providers.Outcome{Group: g.Addr, Change: c, Status: providers.Failed, Err: err})
		}
		return outs, false
	}
	i, err := findGroup(d, g)
	if err != nil {
		return fail(err)
	}
	e := d.entries[i]
	s, err := setShape(e, g)
	if err != nil {
		return fail(fmt.Errorf("group %s: %w", g.Addr, err))
	}
	placeholder := canonicalOrEmpty(g.Attributes.Placeholder)

	// Current values with their IDs; a value that does not parse is kept
	// as is and matches nothing.
	type val struct {
		raw, id string
	}
	var vals []val
	for _, v := range values(e, s.attr) {
		m, err := memberID(d, s, v)
		id := m.ID
		if err != nil {
			id = ""
		}
		vals = append(vals, val{v, id})
	}
	has := func(id string) bool {
		return slices.ContainsFunc(vals, func(v val) bool { return v.id == id })
	}

	ordered := make([]providers.MemberChange, 0, len(gc.Changes))
	for _, c := range gc.Changes {
		if c.Action == providers.Add {
			ordered = append(ordered, c)
		}
	}
	for _, c := range gc.Changes {
		if c.Action != providers.Add {
			ordered = append(ordered, c)
		}
	}
	changed := false
	for _, c := range ordered {
		o := providers.Outcome{Group: g.Addr, Change: c}
		id := memberKey(c.Member.ID)
		switch c.Action {
		case providers.Add:
			switch {
			case has(id):
				o.Status = providers.Already
			default:
				raw, err := valueFor(d, s, id)
				if err != nil {
					o.Status, o.Err = providers.Failed, fmt.Errorf("add %s to group %s: %w", c.Member.ID, g.Addr, err)
					break
				}
				vals = append(vals, val{raw, id})
				o.Status, changed = providers.Done, true
			}
		case providers.Remove:
			if !has(id) {
				o.Status = providers.Already
				break
			}
			rest := slices.DeleteFunc(slices.Clone(vals), func(v val) bool { return v.id == id })
			if s.mustHave && len(rest) == 0 {
				if placeholder == "" {
					o.Status, o.Err = providers.Failed, fmt.Errorf(
						"remove %s from group %s (%s): it is the last member and a %s must keep one; "+
							"set placeholder = \"<DN of an entry to keep as member>\" on group %s, or declare a standing member",
						c.Member.ID, g.Addr, e.DN, s.class, strings.TrimPrefix(g.BaseAddr, "group."))
					break
				}
				rest = append(rest, val{g.Attributes.Placeholder, placeholder})
			}
			vals, changed = rest, true
			o.Status = providers.Done
		default:
			o.Status, o.Err = providers.Failed, fmt.Errorf("group %s: unknown action %q", g.Addr, c.Action)
		}
		outs = append(outs, o)
	}
	if changed {
		raws := make([]string, len(vals))
		for i, v := range vals {
			raws[i] = v.raw
		}
		setValues(e, s.attr, raws)
		if d.dirty != nil {
			d.dirty[i] = true
		}
	}
	return outs, changed
}

// memberKey is the ID a change compares by: a canonical DN when the ID
// parses as one (the planner's IDs already are), the raw uid otherwise.
func memberKey(id string) string {
	if c, err := dn.Canonical(id); err == nil {
		return c
	}
	return id
}

// valueFor is the attribute value that stores member id: the DN as the
// member's entry spells it, or for a posixGroup that entry's uid.
func valueFor(d *directory, s shape, id string) (string, error) {
	i, ok := d.byDN[id]
	if !s.byUID {
		if ok {
			return d.entries[i].DN, nil
		}
		if !dn.IsDN(id) {
			return "", fmt.Errorf("%q is not a DN", id)
		}
		return id, nil
	}
	if !ok {
		if dn.IsDN(id) {
			return "", fmt.Errorf("no entry %q in %s to take a uid from", id, d.path)
		}
		return id, nil // a bare uid
	}
	uids := values(d.entries[i], "uid")
	if len(uids) != 1 {
		return "", fmt.Errorf("entry %q has %d uid values; a posixGroup member needs exactly one", d.entries[i].DN, len(uids))
	}
	return uids[0], nil
}

// setValues replaces the values of attribute name (all spellings of it)
// with vs, keeping the attribute's position; a new attribute goes last.
func setValues(e *goldap.Entry, name string, vs []string) {
	first := -1
	kept := e.Attributes[:0]
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			if first >= 0 {
				continue
			}
			first = len(kept)
		}
		kept = append(kept, a)
	}
	e.Attributes = kept
	if first < 0 {
		if len(vs) == 0 {
			return
		}
		e.Attributes = append(e.Attributes, goldap.NewEntryAttribute(name, vs))
		return
	}
	if len(vs) == 0 {
		e.Attributes = slices.Delete(e.Attributes, first, first+1)
		return
	}
	e.Attributes[first] = goldap.NewEntryAttribute(e.Attributes[first].Name, vs)
}

var (
	_ providers.Opener         = Open
	_ providers.SetKinds       = (*target)(nil)
	_ providers.AccountManager = (*target)(nil)
)
