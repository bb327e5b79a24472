package ldif

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Ephemeral accounts in an LDIF directory: entries directly under the
// block's base whose description is the block's marker and the grant ID,
// made as the live providers make them (uid=NAME inetOrgPerson on
// openldap; on active_directory a user cannot be created in an export,
// since its password cannot be written, so creates fail there).

// readInstances reports the base's existence and the marked entries
// directly under it.
func (t *target) readInstances(d *directory, a *config.Account) providers.AccountState {
	base, err := dn.Canonical(a.Base)
	if err != nil {
		return providers.AccountState{Err: fmt.Errorf("read ephemeral account %s on %s: base: %w", a.Addr, t.addr, err)}
	}
	if _, ok := d.byDN[base]; !ok {
		return providers.AccountState{}
	}
	st := providers.AccountState{Exists: true}
	for i, e := range d.entries {
		if d.deleted[i] {
			continue
		}
		if p, err := dn.Parent(d.canon[i]); err != nil || p != base {
			continue
		}
		in, ok := instanceOf(a, e)
		if !ok {
			continue
		}
		in.Member = providers.Member{ID: d.canon[i], Name: e.DN}
		if in.Enabled, err = t.enabled(e); err != nil {
			return providers.AccountState{Err: fmt.Errorf("read ephemeral account %s on %s: %w", a.Addr, t.addr, err)}
		}
		st.Instances = append(st.Instances, in)
	}
	slices.SortFunc(st.Instances, func(x, y providers.Instance) int { return strings.Compare(x.Member.ID, y.Member.ID) })
	return st
}

func instanceOf(a *config.Account, e *goldap.Entry) (providers.Instance, bool) {
	marker := a.EphemeralMarker()
	for _, v := range values(e, "description") {
		if g, ok := strings.CutPrefix(v, marker); ok && g != "" {
			name, _ := dn.FirstValue(e.DN)
			return providers.Instance{Name: name, DN: e.DN, Grant: g}, true
		}
	}
	return providers.Instance{}, false
}

// setInstance creates or deletes one ephemeral account in d; it reports
// whether d changed. It touches only an entry that carries the marker for
// the change's grant, and only the one its block names.
func (t *target) setInstance(d *directory, c providers.AccountChange) (bool, error) {
	a, in := c.Account, c.Instance
	if in.DN == "" || in.Grant == "" || c.Create == c.Delete {
		return false, fmt.Errorf("account %s: a malformed ephemeral account change", a.Addr)
	}
	want, err := dn.Canonical(a.InstanceDN(in.Name))
	if err != nil {
		return false, fmt.Errorf("account %s: %w", a.Addr, err)
	}
	if got, err := dn.Canonical(in.DN); err != nil || got != want {
		return false, fmt.Errorf("account %s: %q is not the account %q its block names", a.Addr, in.DN, a.InstanceDN(in.Name))
	}
	marker := a.EphemeralMarker() + in.Grant
	i, exists := d.byDN[want]
	if exists && !slices.Contains(values(d.entries[i], "description"), marker) {
		return false, fmt.Errorf("account %s: %q exists and is not jitform's account for %s; not touched", a.Addr, in.DN, in.Grant)
	}
	if c.Delete {
		if !exists {
			return false, nil
		}
		d.deleteEntry(i)
		return true, nil
	}
	if !c.Password.IsSet() {
		return false, fmt.Errorf("account %s: no password for %q: an ephemeral account gets one at creation", a.Addr, in.DN)
	}
	if t.flavor == config.FlavorActiveDirectory {
		return false, errors.New("account " + a.Addr + ": an Active Directory export cannot hold a password (unicodePwd is write-only); ephemeral accounts need a live directory")
	}
	if base, _ := dn.Parent(want); !hasDN(d, base) {
		return false, fmt.Errorf("account %s: the base %q does not exist in %s", a.Addr, a.Base, d.path)
	}
	if !exists {
		e := &goldap.Entry{DN: a.InstanceDN(in.Name)}
		for _, at := range []struct {
			name string
			vs   []string
		}{
			{"objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
			{"uid", []string{in.Name}}, {"cn", []string{in.Name}}, {"sn", []string{in.Name}},
			{"description", []string{marker}},
		} {
			e.Attributes = append(e.Attributes, goldap.NewEntryAttribute(at.name, at.vs))
		}
		d.addEntry(e, want)
		i = len(d.entries) - 1
	}
	// A repeated create (the entry is there) sets a new password and
	// enables it, exactly like the first.
	ch, err := t.setAccount(d, providers.AccountChange{Account: &config.Account{Addr: a.Addr, DN: d.entries[i].DN, Target: a.Target}, Enable: true, Password: c.Password})
	return ch || !exists, err
}

func hasDN(d *directory, canon string) bool {
	_, ok := d.byDN[canon]
	return ok
}
