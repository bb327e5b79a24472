package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/debuglog"
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

// errNotSent marks a Modify that was never handed to the connection (the
// context ended while waiting for a slot): its outcome is known, failed.
var errNotSent = errors.New("not sent")

// serverResult reports the LDAP result code the server answered with, and
// whether err carries one at all. go-ldap builds an *ldap.Error with the
// response packet attached only from a result the server sent; every error
// of its own (EOF, "unable to read LDAP response packet", connection reset
// or closed, its own timeout, a response it could not parse) has code 200
// or above, or no packet, or is not an *ldap.Error.
func serverResult(err error) (uint16, bool) {
	var le *goldap.Error
	if !errors.As(err, &le) || le.Packet == nil || le.ResultCode >= goldap.ErrorNetwork {
		return 0, false
	}
	return le.ResultCode, true
}

// classify is the outcome rule for a Modify: a change the server answered is
// done, already so (its "already" result codes) or failed (any other result
// code); a Modify that never left is failed. Once the request may have been
// sent, anything but a result code from the server (a lost reply, a reset or
// closed connection, a timeout of go-ldap or of ctx) is unknown: the server
// may have committed it.
func classify(err error) providers.Status {
	if err == nil {
		return providers.Done
	}
	if errors.Is(err, errNotSent) {
		return providers.Failed
	}
	if _, ok := serverResult(err); !ok {
		return providers.Unknown
	}
	if alreadyCode(err) {
		return providers.Already
	}
	return providers.Failed
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
	var added []providers.Member // the members adds are for (sudo bounds)
	// rewrites: present TTL links whose expiry no longer matches the
	// change (ttl_links): removed and re-added in the same Modify.
	var rwDel, rwAdd []string
	rwIdx := []int{}
	for i, c := range gc.Changes {
		v, err := t.value(ctx, ge.shape, c.Member)
		if err != nil {
			outs[i].Status, outs[i].Err = providers.Failed, err
			continue
		}
		k := t.key(ge.shape, v)
		w := v // what is written for an add
		if t.cfg.TTLLinks && c.Action == providers.Add && !c.Member.Expires.IsZero() && !ge.shape.byUID() {
			if w, err = t.ttlValue(v, c.Member.Expires); err != nil {
				outs[i].Status, outs[i].Err = providers.Failed, fmt.Errorf("add %s to %s on %s: %w", v, ge.dn, t.addr, err)
				continue
			}
		}
		switch {
		case c.Action == providers.Add && present[k] && t.cfg.TTLLinks && !ge.expires[k].IsZero() && ttlOff(ge.expires[k], c.Member.Expires):
			// A TTL link that expires at the wrong time (the window
			// moved, or the member is now declared): rewrite it. A
			// permanent membership someone else made is never turned
			// into an expiring one.
			rwDel, rwAdd, rwIdx = append(rwDel, v), append(rwAdd, w), append(rwIdx, i)
		case c.Action == providers.Add && present[k], c.Action == providers.Remove && !present[k]:
			outs[i].Status = providers.Already
		case c.Action == providers.Add:
			adds, addIdx = append(adds, w), append(addIdx, i)
			added = append(added, c.Member)
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
	if len(adds) == 0 && len(dels) == 0 && len(rwIdx) == 0 {
		return outs
	}

	// A sudoRole's bound (sudoNotBefore/sudoNotAfter) changes in the same
	// Modify as its users.
	bounds := goldap.NewModifyRequest(ge.dn, nil)
	if ge.shape.sudo() {
		t.sudoBounds(bounds, g, ge, len(ge.values)-len(dels), remaining, added)
	}

	req := goldap.NewModifyRequest(ge.dn, t.writeControls())
	if len(adds) > 0 {
		req.Add(ge.shape.attr, adds)
	}
	if len(dels) > 0 {
		req.Delete(ge.shape.attr, dels)
	}
	if len(rwIdx) > 0 {
		req.Delete(ge.shape.attr, rwDel)
		req.Add(ge.shape.attr, rwAdd)
	}
	req.Changes = append(req.Changes, bounds.Changes...)
	if t.beforeModify != nil {
		t.beforeModify()
	}
	err := t.modify(ctx, req)
	all := append(append(append([]int{}, addIdx...), delIdx...), rwIdx...)
	switch st := classify(err); st {
	case providers.Done:
		for _, i := range all {
			outs[i].Status = providers.Done
		}
	case providers.Already:
		// A Modify fails whole: find out change by change which were
		// already so and make the others.
		for k, i := range addIdx {
			outs[i].Status, outs[i].Err = t.one(ctx, ge, adds[k], true)
		}
		for k, i := range delIdx {
			outs[i].Status, outs[i].Err = t.one(ctx, ge, dels[k], false)
		}
		for k, i := range rwIdx {
			outs[i].Status, outs[i].Err = t.rewrite(ctx, ge, rwDel[k], rwAdd[k])
		}
		if len(bounds.Changes) > 0 {
			if err := t.modify(ctx, bounds); err != nil && t.report != nil {
				t.report("%s: could not bound sudoRole %s with sudoNotBefore/sudoNotAfter: %v", t.addr, ge.dn, err)
			}
		}
	default:
		werr := fmt.Errorf("modify %s on %s: %w", ge.dn, t.addr, err)
		for _, i := range all {
			outs[i].Status, outs[i].Err = st, werr
		}
	}
	return outs
}

// rewrite replaces a TTL link with one of another TTL (or a permanent
// one) in one Modify: delete the link, add the new value.
func (t *target) rewrite(ctx context.Context, ge *groupEntry, old, value string) (providers.Status, error) {
	req := goldap.NewModifyRequest(ge.dn, t.writeControls())
	req.Delete(ge.shape.attr, []string{old})
	req.Add(ge.shape.attr, []string{value})
	err := t.modify(ctx, req)
	st := classify(err)
	if st == providers.Already {
		// The link went away meanwhile (expired) or was rewritten by
		// someone else: the write did not happen.
		st = providers.Failed
	}
	if err != nil {
		return st, fmt.Errorf("rewrite the expiring link of %s in %s on %s as %s: %w", old, ge.dn, t.addr, value, err)
	}
	return st, nil
}

// writeControls go with every Modify: LDAP_SERVER_LINK_TTL (not critical)
// with ttl_links.
func (t *target) writeControls() []goldap.Control {
	if t.cfg.TTLLinks {
		return []goldap.Control{linkTTLControl{}}
	}
	return nil
}

func (t *target) one(ctx context.Context, ge *groupEntry, v string, add bool) (providers.Status, error) {
	req := goldap.NewModifyRequest(ge.dn, t.writeControls())
	verb := "remove"
	if add {
		req.Add(ge.shape.attr, []string{v})
		verb = "add"
	} else {
		req.Delete(ge.shape.attr, []string{v})
	}
	err := t.modify(ctx, req)
	switch st := classify(err); st {
	case providers.Done, providers.Already:
		return st, nil
	default:
		return st, fmt.Errorf("%s %s in %s on %s: %w", verb, v, ge.dn, t.addr, err)
	}
}

// modify sends one Modify (one round trip; see write).
func (t *target) modify(ctx context.Context, req *goldap.ModifyRequest) error {
	return t.write(ctx, func() error { return t.conn.Modify(req) }, func(began time.Time, err error) {
		attrs := []slog.Attr{slog.String("target", t.addr), slog.String("dn", req.DN), slog.Int("changes", len(req.Changes)), ldapCode(err)}
		if debuglog.Tracing(ctx, t.log) {
			for _, c := range req.Changes {
				var vals any = c.Modification.Vals
				if secretAttr(c.Modification.Type) {
					vals = "(sensitive)" // a password never reaches a log
				}
				attrs = append(attrs, slog.Any(changeOp(c.Operation)+" "+c.Modification.Type, vals))
			}
		}
		debuglog.Op(ctx, t.log, "ldap modify", began, err, attrs...)
	})
}

// secretAttr: attributes whose values are passwords.
func secretAttr(a string) bool {
	return strings.EqualFold(a, "unicodePwd") || strings.EqualFold(a, "userPassword")
}

func changeOp(op uint) string {
	switch op {
	case goldap.AddAttribute:
		return "add"
	case goldap.DeleteAttribute:
		return "delete"
	}
	return "replace"
}

// value is what goes into the group's attribute for a member: a DN, or for
// a posixGroup or a sudoRole the member's uid.
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
	return "", fmt.Errorf("member %s has no uid to write into a %s", m.Name, s.class)
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
