package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Ephemeral accounts (account blocks with ephemeral = true) on a live
// directory. Each is an entry directly under the block's base whose
// description is the block's marker followed by the grant ID:
//
//   - openldap: uid=NAME,BASE, an inetOrgPerson (cn and sn are the name),
//     created without a password and so unable to bind; the password is
//     then set with the Password Modify extended operation and ppolicy's
//     lock removed.
//   - active_directory: cn=NAME,BASE, a user created disabled
//     (userAccountControl 514) with sAMAccountName from the name; then
//     unicodePwd is written and ACCOUNTDISABLE cleared.
//
// An entry is deleted, or repaired by a repeated create, only when it
// carries the marker for the same grant: jitform never touches an entry it
// did not make. Every write is classified as for groups: a result code
// decides done, already or failed, a lost answer is unknown.

const uacNormalAccount = 0x200

func (t *target) instanceAttrs(a *config.Account) []string {
	return append(t.accountAttrs(), "description", a.InstanceRDN())
}

// readInstances reads an ephemeral account block's base and the marked
// entries directly under it: two searches.
func (t *target) readInstances(ctx context.Context, a *config.Account) providers.AccountState {
	fail := func(err error) providers.AccountState {
		return providers.AccountState{Err: fmt.Errorf("read ephemeral account %s (under %q) on %s: %w", a.Addr, a.Base, t.addr, err)}
	}
	b, err := t.baseRead(ctx, a.Base, []string{"objectClass"})
	if err != nil {
		return fail(err)
	}
	if b == nil {
		return providers.AccountState{}
	}
	base, err := dn.Canonical(b.DN)
	if err != nil {
		return fail(err)
	}
	marker := a.EphemeralMarker()
	es, err := t.search(ctx, a.Base, "(description="+goldap.EscapeFilter(marker)+"*)", t.instanceAttrs(a))
	if err != nil {
		return fail(err)
	}
	st := providers.AccountState{Exists: true}
	for _, e := range es {
		id, err := dn.Canonical(e.DN)
		if err != nil {
			return fail(fmt.Errorf("entry %q: %w", e.DN, err))
		}
		if p, err := dn.Parent(id); err != nil || p != base {
			continue // not created by jitform: they are made directly under base
		}
		in, ok := t.instance(a, e)
		if !ok {
			continue
		}
		in.Member = providers.Member{ID: id, Name: e.DN}
		if in.Enabled, err = t.enabled(e); err != nil {
			return fail(err)
		}
		st.Instances = append(st.Instances, in)
	}
	slices.SortFunc(st.Instances, func(x, y providers.Instance) int { return strings.Compare(x.Member.ID, y.Member.ID) })
	return st
}

// instance reads an entry's name and the grant its marker names; ok is
// false for an entry without the marker.
func (t *target) instance(a *config.Account, e *goldap.Entry) (providers.Instance, bool) {
	marker := a.EphemeralMarker()
	for _, d := range e.GetAttributeValues("description") {
		if g, ok := strings.CutPrefix(d, marker); ok && g != "" {
			name, _ := dn.FirstValue(e.DN)
			return providers.Instance{Name: name, DN: e.DN, Grant: g}, true
		}
	}
	return providers.Instance{}, false
}

// setInstance makes one create or delete. Errors never contain the password.
func (t *target) setInstance(ctx context.Context, c providers.AccountChange) (providers.Status, error) {
	a, in := c.Account, c.Instance
	verb := "delete"
	if c.Create {
		verb = "create"
	}
	fail := func(st providers.Status, err error) (providers.Status, error) {
		return st, fmt.Errorf("%s account %q (%s) on %s: %w", verb, in.DN, a.Addr, t.addr, err)
	}
	if in == nil || in.DN == "" || in.Grant == "" {
		return fail(providers.Failed, errors.New("no account named"))
	}
	if c.Create == c.Delete {
		return fail(providers.Failed, errors.New("neither or both of create and delete"))
	}
	// The account must be the one its block names, directly under base:
	// a plan file edited to point elsewhere is refused here.
	want, err := dn.Canonical(a.InstanceDN(in.Name))
	if err != nil {
		return fail(providers.Failed, err)
	}
	if got, err := dn.Canonical(in.DN); err != nil || got != want {
		return fail(providers.Failed, fmt.Errorf("the account is not %q, which its block names", a.InstanceDN(in.Name)))
	}
	marker := a.EphemeralMarker() + in.Grant
	e, err := t.baseRead(ctx, in.DN, t.instanceAttrs(a))
	if err != nil {
		return fail(providers.Failed, fmt.Errorf("read before writing: %w", err))
	}
	if e != nil && !slices.Contains(e.GetAttributeValues("description"), marker) {
		return fail(providers.Failed, fmt.Errorf("the entry exists and is not jitform's account for %s (its description lacks %q); not touched", in.Grant, marker))
	}
	if c.Delete {
		if e == nil {
			return providers.Already, nil
		}
		err := t.write(ctx, func() error { return t.conn.Del(goldap.NewDelRequest(in.DN, nil)) }, t.logEntryOp(ctx, "ldap delete", in.DN))
		if st := classify(err); st != providers.Done {
			if st == providers.Failed && goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return providers.Already, nil
			}
			return fail(st, err)
		}
		return providers.Done, nil
	}

	pw := ""
	if c.Password.IsSet() {
		pw = c.Password.Reveal()
	}
	if pw == "" {
		return fail(providers.Failed, errors.New("no password to set: an ephemeral account gets one at creation"))
	}
	if !t.secure() {
		return fail(providers.Failed, errors.New("refusing to send a password over an unencrypted connection: use ldaps:// or StartTLS"))
	}
	if e == nil {
		req := t.addRequest(a, in, marker)
		err := t.write(ctx, func() error { return t.conn.Add(req) }, t.logEntryOp(ctx, "ldap add", in.DN))
		if st := classify(err); st != providers.Done {
			if st == providers.Already {
				st = providers.Failed // someone made it meanwhile: not ours
			}
			return fail(st, fmt.Errorf("add the entry: %w", err))
		}
	}
	// From here the entry exists: a failure leaves it without a usable
	// password or disabled, which the next plan repairs or deletes.
	if err := t.setPassword(ctx, in.DN, pw); err != nil {
		st := classify(err)
		if st == providers.Already {
			st = providers.Failed
		}
		return fail(st, fmt.Errorf("set the password: %w", scrub(err, pw)))
	}
	e, err = t.baseRead(ctx, in.DN, t.instanceAttrs(a))
	if err == nil && e == nil {
		err = errors.New("the entry is gone")
	}
	var state *goldap.ModifyRequest
	if err == nil {
		state, err = t.stateChange(e, true)
	}
	if err != nil {
		return fail(providers.Unknown, fmt.Errorf("read again after setting the password: %w", err))
	}
	if len(state.Changes) > 0 {
		if err := t.modify(ctx, state); err != nil {
			st := classify(err)
			if st == providers.Already {
				st = providers.Failed
			}
			return fail(st, fmt.Errorf("enable it: %w", scrub(err, pw)))
		}
	}
	return providers.Done, nil
}

// addRequest is the new account's entry; no value in it comes from
// anything but the block and the grant (the name's characters are
// [a-z0-9._-]).
func (t *target) addRequest(a *config.Account, in *providers.Instance, marker string) *goldap.AddRequest {
	req := goldap.NewAddRequest(in.DN, nil)
	req.Attribute("description", []string{marker})
	req.Attribute("cn", []string{in.Name})
	if t.ad() {
		req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		req.Attribute("sAMAccountName", []string{config.SAMAccountName(in.Name)})
		req.Attribute("userAccountControl", []string{strconv.Itoa(uacNormalAccount | uacAccountDisable)})
		return req
	}
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	req.Attribute("uid", []string{in.Name})
	req.Attribute("sn", []string{in.Name})
	return req
}

// write sends one write request (one round trip): an Add, Delete, Modify
// or Password Modify. go-ldap's writes take no context, so when ctx ends
// first the write's fate is unknown and the error says so (classify calls
// it unknown); an error that wraps errNotSent means the request was never
// handed to the connection. logOp, when logging, records the operation.
func (t *target) write(ctx context.Context, send func() error, logOp func(began time.Time, err error)) error {
	release, err := t.acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	defer release()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	t.ops.Add(1)
	began := time.Now()
	err = t.await(ctx, send)
	if t.log != nil {
		logOp(began, err)
	}
	return err
}

// logEntryOp logs an Add or Delete of entryDN.
func (t *target) logEntryOp(ctx context.Context, op, entryDN string) func(time.Time, error) {
	return func(began time.Time, err error) {
		debuglog.Op(ctx, t.log, op, began, err, slog.String("target", t.addr), slog.String("dn", entryDN), ldapCode(err))
	}
}

// await runs one write and waits for its answer or the end of ctx.
func (t *target) await(ctx context.Context, send func() error) error {
	done := make(chan error, 1)
	go func() { done <- send() }()
	select {
	case err := <-done:
		crashpoint.Hit(crashpoint.AfterWrite)
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer before the context ended (the write may or may not have happened): %w", ctx.Err())
	}
}
