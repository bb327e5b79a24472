package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// Accounts have their own semantics, explicit here rather than bent into
// membership: an account is desired enabled while at least one grant under
// a policy listing it counts now, and disabled otherwise. The observed
// state comes from the provider (Input.Accounts). Changes:
//
//   - enable: desired enabled, observed disabled. The reason is the
//     counting grant that lasts longest, as for an add.
//   - enable with password_rotated while already enabled: rotate_password
//     and a counting grant has no delivered password on record (a grant
//     that started while another kept the account enabled, or an enable
//     whose outcome never reached the ledger). The new password goes to
//     every counting grant, since it replaces the old one.
//   - enable to re-arm while already enabled: the account's pending
//     dead-man's switch (AccountState.Expires) is more than a minute off
//     the longest counting grant's window end plus grace, or due before
//     that end, as a later grant that started while the account was
//     enabled leaves it. The provider sets the switch again; no password
//     unless one is due as above.
//   - disable: desired disabled, observed enabled (or, with
//     rotate_password, already disabled by someone else while a delivered
//     password is still on record: the password is rotated all the same). The reason is the grant
//     that stopped counting most recently, or the grant the ledger says
//     jitform enabled it for (its policy deleted or changed), or that no
//     grant is active. With rotate_password a fresh password, delivered to
//     nobody, replaces the one seen during the window, and the stored
//     credentials are deleted.
//
// An account that does not exist, or whose counting grant's principal has
// no declared actor key while rotate_password is set, is a plan error and
// gets no change.

// AccountDigest is what a plan records of an account's observed state, so
// a saved plan is refused after it changed.
func AccountDigest(st providers.AccountState) string {
	if st.Err != nil {
		return ""
	}
	if len(st.Instances) > 0 {
		h := sha256.Sum256([]byte(instancesDigest(st)))
		return hex.EncodeToString(h[:])
	}
	b := fmt.Appendf(nil, "account exists=%t enabled=%t", st.Exists, st.Enabled)
	if !st.Expires.IsZero() {
		// Only when set, so an account without a switch keeps its digest.
		b = fmt.Appendf(b, " expires=%d", st.Expires.Unix())
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (c *computer) planAccounts() {
	accounts := slices.Clone(c.cfg.Accounts)
	slices.SortFunc(accounts, func(a, b *config.Account) int { return strings.Compare(a.Addr, b.Addr) })
	for _, a := range accounts {
		c.planAccount(a)
	}
}

func (c *computer) planAccount(a *config.Account) {
	taddr := ""
	if a.Target != nil {
		taddr = a.Target.Addr
	}
	sum := AccountSummary{Account: a.Addr, Target: taddr, Name: a.Display(), RotatePassword: a.RotatePassword, Ephemeral: a.Ephemeral}
	if why, ok := c.in.Unsupported[a.Addr]; ok {
		c.plan.Warnings = append(c.plan.Warnings, Warning{
			Summary: fmt.Sprintf("%s is not managed: %s", a.Addr, why),
			Detail:  "nothing is planned for it; it is neither read nor enabled or disabled",
			Subject: subject(a.DeclRange),
		})
		return
	}
	st, ok := c.in.Accounts[a.Addr]
	if !ok || st.Err != nil {
		msg := "account state was not read"
		if ok {
			msg = st.Err.Error()
		}
		c.plan.Unreadable = append(c.plan.Unreadable, Unreadable{Kind: KindAccount, Group: a.Addr, Target: taddr, Error: msg})
		c.plan.Accounts = append(c.plan.Accounts, sum)
		return
	}
	sum.Readable, sum.Exists, sum.Enabled = true, st.Exists, st.Enabled
	c.plan.Observed[a.Addr] = AccountDigest(st)
	if a.Ephemeral {
		sum.Instances = len(st.Instances)
		c.planEphemeral(a, sum, st)
		return
	}

	relevant, counting := c.accountGrants(a, &sum, func(*evalGrant) bool { return true })

	var errs []Warning
	if !st.Exists {
		errs = append(errs, Warning{
			Summary: fmt.Sprintf("%s: %s does not exist on %s; no changes planned for this account", a.Addr, a.Display(), taddr),
			Detail:  "jitform enables and disables an existing account; create it (disabled) first",
			Subject: subject(a.DeclRange),
		})
	}
	if a.RotatePassword {
		for _, eg := range counting {
			if c.cfg.ActorForPrincipal(eg.g.Principal) == nil {
				errs = append(errs, Warning{
					Summary: fmt.Sprintf("%s: %s grants a rotated password to %q, who is not a declared actor; no changes planned for this account", a.Addr, eg.g.ID, eg.g.Principal),
					Detail:  fmt.Sprintf("the password is delivered only encrypted to the principal's ssh_key: declare actor %q { ssh_key = \"...\" }", config.ActorNameOf(eg.g.Principal)),
					Subject: eg.subject(),
				})
			}
		}
	}
	if len(errs) > 0 {
		c.plan.Errors = append(c.plan.Errors, errs...)
		sum.Blocked = true
		c.plan.Accounts = append(c.plan.Accounts, sum)
		return
	}

	ch := Change{Kind: KindAccount, Group: a.Addr, Target: taddr, Object: a.Display(), PasswordRotated: a.RotatePassword}
	delivered := c.ledger.Credentials[a.Addr]
	switch {
	case sum.DesiredEnabled:
		var longest *evalGrant
		var missing []string
		for _, eg := range counting {
			if longest == nil || lastsLonger(eg, longest) {
				longest = eg
			}
			if !delivered[eg.g.ID] {
				missing = append(missing, eg.g.ID)
			}
		}
		newPassword := !st.Enabled || a.RotatePassword && len(missing) > 0
		// A pending dead-man's switch set for an earlier window would
		// disable the account while a later grant still counts: the
		// enable is repeated to set it to the longest window's end. Off
		// by more than a minute, as for group members, or due before
		// that end at all: the minute's slack must not let it fire early.
		_, end := longest.window()
		rearm := st.Enabled && !st.Expires.IsZero() && (expiryOff(st.Expires, end) || st.Expires.Before(*end))
		if !newPassword && !rearm {
			break
		}
		ch.Action = ActionEnable
		ch.Principal = longest.g.Principal
		ch.Reason = c.grantReason(longest)
		if st.Enabled {
			var notes []string
			if newPassword {
				notes = append(notes, fmt.Sprintf("already enabled; new password because %s has none yet", strings.Join(missing, ", ")))
			} else {
				// Every grantee has the current password: keep it.
				notes = append(notes, "already enabled")
				ch.PasswordRotated = false
			}
			if rearm {
				notes = append(notes, "re-arm the dead-man's switch, which would disable it at "+stamp(st.Expires))
			}
			ch.Reason.Detail = strings.TrimPrefix(ch.Reason.Detail+"; "+strings.Join(notes, "; "), "; ")
		}
		if ch.PasswordRotated {
			for _, eg := range counting {
				ch.Credentials = append(ch.Credentials, Credential{Grant: eg.g.ID, Principal: eg.g.Principal})
			}
		}
		c.plan.Changes = append(c.plan.Changes, ch)
	case st.Enabled || a.RotatePassword && len(delivered) > 0:
		// Disabled by someone else while a delivered password is on
		// record: rotate it anyway, so it cannot be used again if the
		// account is re-enabled, and delete the stored copies.
		ch.Action = ActionDisable
		var stopped []*evalGrant
		for _, eg := range relevant {
			if stopKind(eg.status) != "" {
				stopped = append(stopped, eg)
			}
		}
		rec, isManaged := c.ledger.Accounts[a.Addr]
		ch.Principal, ch.Reason = c.removeReason(a.BaseAddr, stopped, relevant, rec, isManaged)
		if ch.Reason.Kind == ReasonUndeclared {
			ch.Reason.Detail = strings.Replace(ch.Reason.Detail, "neither declared nor granted", "enabled, but no grant for it is active", 1)
		}
		if !st.Enabled {
			ch.Reason.Detail = strings.TrimPrefix(ch.Reason.Detail+"; already disabled; the password delivered in the window is rotated and its stored copies deleted", "; ")
		}
		for _, g := range sortedKeys(delivered) {
			ch.Credentials = append(ch.Credentials, Credential{Grant: g})
		}
		c.plan.Changes = append(c.plan.Changes, ch)
	}
	c.plan.Accounts = append(c.plan.Accounts, sum)
}

// accountGrants returns the grants under the policies listing account a,
// and those of them counting now that keep pass (sorted by ID), which it
// records in the summary.
func (c *computer) accountGrants(a *config.Account, sum *AccountSummary, keep func(*evalGrant) bool) (relevant, counting []*evalGrant) {
	for _, pol := range c.byAccount[a.BaseAddr] {
		relevant = append(relevant, c.byPolicy[pol.Addr]...)
	}
	for _, eg := range relevant {
		if eg.status == stCounting && keep(eg) {
			counting = append(counting, eg)
		}
	}
	slices.SortFunc(counting, func(x, y *evalGrant) int { return strings.Compare(x.g.ID, y.g.ID) })
	for _, eg := range counting {
		sum.ActiveGrants = append(sum.ActiveGrants, eg.g.ID)
	}
	sum.DesiredEnabled = len(counting) > 0
	return relevant, counting
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
