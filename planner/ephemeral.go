package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Ephemeral accounts (config/ephemeral.go) are planned per grant:
//
//   - create: a grant counts now and its account (named by the pattern)
//     does not exist under base, or exists disabled, or exists without a
//     password delivered for the grant on record (a create whose outcome
//     never reached the ledger). The provider creates it, or repairs the
//     one it finds with the same marker: a fresh password, delivered to
//     the grant's principal, and enabled.
//   - delete: an account under base carries the block's marker, the
//     ledger records that jitform created it, and no counting grant wants
//     it. An account with the marker that the ledger does not record is
//     left alone, with a warning: a marker anyone with write access could
//     forge never makes jitform delete an entry.
//
// In the policy's managed sets on the account's target, the created
// account stands in for the principal: the set gains and loses the account
// (its canonical DN), planned as ordinary adds and removes, and apply
// makes creates before, and deletes after, the set changes of the target.

// indexEphemeral maps each policy's ephemeral accounts by target; two on
// one target in one policy are a plan error (which would hold the sets?).
func (c *computer) indexEphemeral() {
	c.ephemeral = map[string]map[string]*config.Account{}
	byBase := map[string][]*config.Account{}
	for _, a := range c.cfg.Accounts {
		if a.Ephemeral && a.Target != nil {
			byBase[a.BaseAddr] = append(byBase[a.BaseAddr], a)
		}
	}
	for _, pol := range c.cfg.Policies {
		for _, base := range pol.Accounts {
			for _, a := range byBase[base] {
				m := c.ephemeral[pol.Addr]
				if m == nil {
					m = map[string]*config.Account{}
					c.ephemeral[pol.Addr] = m
				}
				if other := m[a.Target.Addr]; other != nil {
					c.plan.Errors = append(c.plan.Errors, Warning{
						Summary: fmt.Sprintf("%s lists two ephemeral accounts on %s (%s and %s); only %s is used", pol.Addr, a.Target.Addr, other.Addr, a.Addr, other.Addr),
						Detail:  "one created account stands in for the principal in the policy's groups on a target; list one ephemeral account per target",
						Subject: subject(pol.DeclRange),
					})
					continue
				}
				m[a.Target.Addr] = a
			}
		}
	}
}

// ephemeralFor is the ephemeral account standing in for eg's principal on
// the target, or nil.
func (c *computer) ephemeralFor(eg *evalGrant, target string) *config.Account {
	// By the policy's address: an ended grant has no eg.pol, and its
	// account must still be found to be removed.
	return c.ephemeral[eg.g.Policy][target]
}

// grantMember is who a grant puts into a set on target: the principal as
// resolved there, or the ephemeral account created for the grant.
func (c *computer) grantMember(eg *evalGrant, target string, resolve func(string) (providers.Member, error)) (providers.Member, error) {
	a := c.ephemeralFor(eg, target)
	if a == nil {
		return resolve(eg.g.Principal)
	}
	m, _, err := c.instanceMember(a, eg)
	return m, err
}

// instanceMember is the account a grant's ephemeral account is, as groups
// hold it: the observed account when it exists, else its DN to be.
func (c *computer) instanceMember(a *config.Account, eg *evalGrant) (providers.Member, string, error) {
	name, err := a.InstanceName(eg.g.Principal, eg.g.ID)
	if err != nil {
		return providers.Member{}, "", err
	}
	want := a.InstanceDN(name)
	id, err := dn.Canonical(want)
	if err != nil {
		return providers.Member{}, "", fmt.Errorf("%s: the account DN %q: %w", a.Addr, want, err)
	}
	for _, in := range c.in.Accounts[a.Addr].Instances {
		if in.Member.ID == id {
			return in.Member, name, nil
		}
	}
	return providers.Member{ID: id, Name: want}, name, nil
}

func (c *computer) planEphemeral(a *config.Account, sum AccountSummary, st providers.AccountState) {
	taddr := a.Target.Addr
	relevant, counting := c.accountGrants(a, &sum, func(eg *evalGrant) bool { return c.ephemeralFor(eg, taddr) == a })

	var errs []Warning
	if !st.Exists {
		errs = append(errs, Warning{
			Summary: fmt.Sprintf("%s: the base %q does not exist on %s; no accounts are created or deleted", a.Addr, a.Base, taddr),
			Detail:  "ephemeral accounts are created directly under base; create the container first",
			Subject: subject(a.DeclRange),
		})
	}
	type wanted struct {
		eg   *evalGrant
		m    providers.Member
		name string
	}
	want := map[string]wanted{}
	for _, eg := range counting {
		m, name, err := c.instanceMember(a, eg)
		if err != nil {
			errs = append(errs, Warning{Summary: fmt.Sprintf("%s: no account can be named for %s", a.Addr, eg.g.ID), Detail: err.Error(), Subject: eg.subject()})
			continue
		}
		if c.cfg.ActorForPrincipal(eg.g.Principal) == nil {
			errs = append(errs, Warning{
				Summary: fmt.Sprintf("%s: %s creates an account for %q, who is not a declared actor; no changes planned for this account", a.Addr, eg.g.ID, eg.g.Principal),
				Detail:  fmt.Sprintf("the password is delivered only encrypted to the principal's ssh_key: declare actor %q { ssh_key = \"...\" }", config.ActorNameOf(eg.g.Principal)),
				Subject: eg.subject(),
			})
			continue
		}
		want[m.ID] = wanted{eg, m, name}
	}
	if len(errs) > 0 {
		c.plan.Errors = append(c.plan.Errors, errs...)
		sum.Blocked = true
		c.plan.Accounts = append(c.plan.Accounts, sum)
		return
	}

	observed := map[string]providers.Instance{}
	for _, in := range st.Instances {
		observed[in.Member.ID] = in
	}
	delivered := c.ledger.Credentials[a.Addr]
	recorded := c.ledger.Instances[a.Addr]
	var cs []Change
	for _, id := range sortedKeys(observed) {
		in := observed[id]
		if _, ok := want[id]; ok {
			continue
		}
		rec, ours := recorded[id]
		if !ours {
			c.plan.Warnings = append(c.plan.Warnings, Warning{
				Summary: fmt.Sprintf("%s: %s carries jitform's marker but the ledger has no record of jitform creating it; left alone", a.Addr, in.DN),
				Detail:  "jitform deletes only the accounts its ledger says it created; delete it by hand if it should not exist",
				Subject: subject(a.DeclRange),
			})
			continue
		}
		var stopped []*evalGrant
		for _, eg := range relevant {
			if eg.g.ID == in.Grant && stopKind(eg.status) != "" {
				stopped = append(stopped, eg)
			}
		}
		ch := Change{Kind: KindAccount, Action: ActionDelete, Group: a.Addr, Target: taddr, Object: in.Name, Member: id, MemberName: in.DN}
		ch.Principal, ch.Reason = c.removeReason(a.BaseAddr, stopped, relevant, rec, true)
		if ch.Reason.Kind == ReasonUndeclared {
			ch.Reason.Detail = strings.Replace(ch.Reason.Detail, "no longer declared nor granted", "no grant for it counts", 1)
		}
		for _, g := range []string{in.Grant, rec.Grant} {
			if g != "" && delivered[g] && !slices.ContainsFunc(ch.Credentials, func(cr Credential) bool { return cr.Grant == g }) {
				ch.Credentials = append(ch.Credentials, Credential{Grant: g})
			}
		}
		cs = append(cs, ch)
	}
	for _, id := range sortedKeys(want) {
		w := want[id]
		in, exists := observed[id]
		if exists && in.Enabled && delivered[w.eg.g.ID] {
			continue
		}
		ch := Change{Kind: KindAccount, Action: ActionCreate, Group: a.Addr, Target: taddr, Object: w.name,
			Member: id, MemberName: a.InstanceDN(w.name), Principal: w.eg.g.Principal, PasswordRotated: true,
			Reason:      c.grantReason(w.eg),
			Credentials: []Credential{{Grant: w.eg.g.ID, Principal: w.eg.g.Principal}}}
		if exists {
			ch.MemberName = in.DN
			note := "it exists already: a new password, and enabled"
			if !delivered[w.eg.g.ID] {
				note = "it exists already without a password delivered for " + w.eg.g.ID + ": a new one, and enabled"
			}
			ch.Reason.Detail = strings.TrimPrefix(ch.Reason.Detail+"; "+note, "; ")
		}
		cs = append(cs, ch)
	}
	c.plan.Changes = append(c.plan.Changes, cs...)
	c.plan.Accounts = append(c.plan.Accounts, sum)
}

// InstancesDigest is what a plan records of an ephemeral account's
// observed accounts.
func instancesDigest(st providers.AccountState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "base exists=%t", st.Exists)
	ins := slices.Clone(st.Instances)
	slices.SortFunc(ins, func(x, y providers.Instance) int { return strings.Compare(x.Member.ID, y.Member.ID) })
	for _, in := range ins {
		fmt.Fprintf(&b, "\n%q %q %t", in.Member.ID, in.Grant, in.Enabled)
	}
	return b.String()
}

// orphanedInstances warns about accounts the ledger says jitform created
// whose block no longer manages them (the block is gone, is no longer
// ephemeral, or its base moved): nothing reads them any more, so nothing
// would delete them. Their group memberships are still removed (the ledger
// records those adds); the accounts themselves need a person.
func (c *computer) orphanedInstances() {
	for _, addr := range sortedKeys(c.ledger.Instances) {
		a := c.cfg.AccountByAddr(addr)
		base := ""
		if a != nil && a.Ephemeral {
			base, _ = dn.Canonical(a.Base)
		}
		for _, id := range sortedKeys(c.ledger.Instances[addr]) {
			if p, err := dn.Parent(id); base != "" && err == nil && p == base {
				continue
			}
			rec := c.ledger.Instances[addr][id]
			c.plan.Warnings = append(c.plan.Warnings, Warning{
				Summary: fmt.Sprintf("%s: jitform created %s for %s, and no ephemeral account block manages it now; it is neither read nor deleted", addr, id, rec.Grant),
				Detail:  "restore the block (or its base) so jitform deletes it, or delete the account by hand",
			})
		}
	}
}
