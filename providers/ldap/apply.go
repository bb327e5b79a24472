package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/crashpoint"
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

// Apply makes each group's changes in one Modify. It first reads all the
// changed groups (one search per 100, as Read does): to report changes that
// are already so, and to refuse to empty a groupOfNames (which must keep
// one member) unless the group names a placeholder member. The Modifies
// then run concurrently, bounded by max_concurrency; outcomes keep the
// order of the changes.
func (t *target) Apply(ctx context.Context, changes []providers.GroupChange) ([]providers.Outcome, error) {
	groups := make([]*config.Group, len(changes))
	distinct := map[string]bool{}
	for i, gc := range changes {
		groups[i] = gc.Group
		distinct[gc.Group.Addr] = true
	}
	var entries map[string]*groupEntry
	var errs map[string]error
	readErr := ctx.Err()
	if readErr == nil {
		entries, errs, readErr = t.readGroups(ctx, groups)
	}
	results := make([][]providers.Outcome, len(changes))
	each := func(i int) {
		gc := changes[i]
		err := readErr
		if err != nil {
			err = fmt.Errorf("read group %s on %s before writing: %w", gc.Group.Addr, t.addr, err)
		} else if e := errs[gc.Group.Addr]; e != nil {
			err = e
		}
		results[i] = t.applyGroup(ctx, gc, entries[gc.Group.Addr], err)
	}
	if len(distinct) < len(changes) {
		// Two changes to one group would race each other: one at a time.
		for i := range changes {
			each(i)
		}
	} else {
		var wg sync.WaitGroup
		for i := range changes {
			wg.Go(func() { each(i) })
		}
		wg.Wait()
	}
	var out []providers.Outcome
	for _, r := range results {
		out = append(out, r...)
	}
	return out, nil
}

// applyGroup writes one group's changes; ge is the group as read just
// before, or readErr why it could not be read.
func (t *target) applyGroup(ctx context.Context, gc providers.GroupChange, ge *groupEntry, readErr error) []providers.Outcome {
	g := gc.Group
	outs := make([]providers.Outcome, len(gc.Changes))
	for i, c := range gc.Changes {
		outs[i] = providers.Outcome{Group: g.Addr, Change: c}
	}
	if readErr != nil {
		for i := range outs {
			outs[i].Status, outs[i].Err = providers.Failed, readErr
		}
		return outs
	}

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
	err := t.modify(ctx, req)
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

// modify sends one Modify (one round trip). go-ldap's Modify takes no
// context: when ctx ends first the write's fate is unknown, and the error
// says so (uncertain recognises it).
func (t *target) modify(ctx context.Context, req *goldap.ModifyRequest) error {
	release, err := t.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	t.ops.Add(1)
	done := make(chan error, 1)
	go func() { done <- t.conn.Modify(req) }()
	select {
	case err := <-done:
		crashpoint.Hit(crashpoint.AfterWrite)
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer before the context ended (the write may or may not have happened): %w", ctx.Err())
	}
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
