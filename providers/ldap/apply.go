package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Result codes that mean "someone already did it": OpenLDAP answers 20 and
// 16, Active Directory and Samba 68 and 53 (TESTBEDS.md).
func alreadyCode(err error) bool {
	for _, c := range []uint16{
		goldap.LDAPResultAttributeOrValueExists, // 20: add of a present value
		goldap.LDAPResultNoSuchAttribute,        // 16: delete of an absent value
		goldap.LDAPResultEntryAlreadyExists,     // 68: AD's "already a member"
		goldap.LDAPResultUnwillingToPerform,     // 53: AD's "not a member"
	} {
		if goldap.IsErrorWithCode(err, c) {
			return true
		}
	}
	return false
}

// uncertain reports errors after which a write may or may not have happened.
func uncertain(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return goldap.IsErrorWithCode(err, goldap.ErrorNetwork) || goldap.IsErrorWithCode(err, goldap.LDAPResultTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Apply makes each group's changes in one Modify. Before writing it reads
// the group once: to report changes that are already so, and to refuse to
// empty a groupOfNames (which must keep one member) unless the group names
// a placeholder member.
func (t *target) Apply(ctx context.Context, changes []providers.GroupChange) ([]providers.Outcome, error) {
	var out []providers.Outcome
	for _, gc := range changes {
		out = append(out, t.applyGroup(ctx, gc)...)
	}
	return out, nil
}

func (t *target) applyGroup(ctx context.Context, gc providers.GroupChange) []providers.Outcome {
	g := gc.Group
	outs := make([]providers.Outcome, len(gc.Changes))
	for i, c := range gc.Changes {
		outs[i] = providers.Outcome{Group: g.Addr, Change: c}
	}
	failAll := func(st providers.Status, err error) []providers.Outcome {
		for i := range outs {
			outs[i].Status, outs[i].Err = st, err
		}
		return outs
	}
	if err := ctx.Err(); err != nil {
		return failAll(providers.Failed, fmt.Errorf("not attempted: %w", err))
	}
	entries, errs, err := t.readGroups(ctx, []*config.Group{g})
	if err != nil {
		return failAll(providers.Failed, fmt.Errorf("read group %s on %s before writing: %w", g.Addr, t.addr, err))
	}
	if e := errs[g.Addr]; e != nil {
		return failAll(providers.Failed, e)
	}
	ge := entries[g.Addr]

	present := map[string]bool{} // canonical (or uid) values now in the group
	for _, v := range ge.values {
		present[t.key(ge.shape, v)] = true
	}
	remaining := len(ge.values)

	var adds, dels []string
	addIdx, delIdx := []int{}, []int{}
	for i, c := range gc.Changes {
		v, err := t.value(ctx, ge.shape, c.Member)
		if err != nil {
			outs[i].Status, outs[i].Err = providers.Failed, err
			continue
		}
		k := t.key(ge.shape, v)
		switch {
		case c.Action == providers.Add && present[k], c.Action == providers.Remove && !present[k]:
			outs[i].Status = providers.Already
		case c.Action == providers.Add:
			adds, addIdx = append(adds, v), append(addIdx, i)
			present[k] = true
			remaining++
		default:
			dels, delIdx = append(dels, v), append(delIdx, i)
			present[k] = false
			remaining--
		}
	}

	if ge.shape.mustHaveMember() && remaining <= 0 && len(dels) > 0 {
		ph := g.Attributes.Placeholder
		if ph == "" {
			err := fmt.Errorf("refusing to remove the last member of %s (%s on %s): a %s must keep at least one member; set placeholder = \"<DN>\" on group %q to keep a harmless member instead",
				g.Addr, ge.dn, t.addr, ge.shape.class, g.Name)
			for _, i := range delIdx {
				outs[i].Status, outs[i].Err = providers.Failed, err
			}
			dels, delIdx = nil, nil
		} else {
			adds = append(adds, ph)
		}
	}
	if len(adds) == 0 && len(dels) == 0 {
		return outs
	}

	req := goldap.NewModifyRequest(ge.dn, nil)
	if len(adds) > 0 {
		req.Add(ge.shape.attr, adds)
	}
	if len(dels) > 0 {
		req.Delete(ge.shape.attr, dels)
	}
	if t.beforeModify != nil {
		t.beforeModify()
	}
	t.ops.Add(1)
	err = t.modify(ctx, req)
	switch {
	case err == nil:
		for _, i := range append(addIdx, delIdx...) {
			outs[i].Status = providers.Done
		}
	case alreadyCode(err):
		// A Modify fails whole: find out change by change which were
		// already so and make the others.
		for k, i := range addIdx {
			outs[i].Status, outs[i].Err = t.one(ctx, ge, adds[k], true)
		}
		for k, i := range delIdx {
			outs[i].Status, outs[i].Err = t.one(ctx, ge, dels[k], false)
		}
	default:
		st := providers.Failed
		if uncertain(err) {
			st = providers.Unknown
		}
		werr := fmt.Errorf("modify %s on %s: %w", ge.dn, t.addr, err)
		for _, i := range append(addIdx, delIdx...) {
			outs[i].Status, outs[i].Err = st, werr
		}
	}
	return outs
}

func (t *target) one(ctx context.Context, ge *groupEntry, v string, add bool) (providers.Status, error) {
	req := goldap.NewModifyRequest(ge.dn, nil)
	verb := "remove"
	if add {
		req.Add(ge.shape.attr, []string{v})
		verb = "add"
	} else {
		req.Delete(ge.shape.attr, []string{v})
	}
	t.ops.Add(1)
	err := t.modify(ctx, req)
	switch {
	case err == nil:
		return providers.Done, nil
	case alreadyCode(err):
		return providers.Already, nil
	case uncertain(err):
		return providers.Unknown, fmt.Errorf("%s %s in %s on %s: %w", verb, v, ge.dn, t.addr, err)
	}
	return providers.Failed, fmt.Errorf("%s %s in %s on %s: %w", verb, v, ge.dn, t.addr, err)
}

func (t *target) modify(ctx context.Context, req *goldap.ModifyRequest) error {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.sem }()
	return t.conn.Modify(req)
}

// value is what goes into the group's attribute for a member: a DN, or for
// a posixGroup the member's uid.
func (t *target) value(ctx context.Context, s shape, m providers.Member) (string, error) {
	if !s.byUID() {
		if dn.IsDN(m.Name) {
			return m.Name, nil
		}
		if dn.IsDN(m.ID) {
			return m.ID, nil
		}
		return "", fmt.Errorf("member %q has no DN to write into a %s", m.ID, s.class)
	}
	if u, ok := t.uidOf(m.ID); ok {
		return u, nil
	}
	if !dn.IsDN(m.ID) {
		return m.ID, nil // an unmapped memberUid keeps its uid as ID
	}
	e, err := t.baseRead(ctx, m.ID, []string{"uid"})
	if err == nil && e != nil {
		if u := e.GetAttributeValue("uid"); u != "" {
			t.rememberUID(m.ID, u)
			return u, nil
		}
	}
	return "", fmt.Errorf("member %s has no uid to write into a posixGroup", m.Name)
}

// key compares attribute values the way the server would.
func (t *target) key(s shape, v string) string {
	if s.byUID() {
		return v
	}
	if c, err := dn.Canonical(v); err == nil {
		return c
	}
	return strings.ToLower(v)
}
