package ldap

import (
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// Sudo roles (sudo_role blocks) are sudo-ldap sudoRole entries: their
// sudoUser values are the members (user names, mapped to entries by uid as
// a posixGroup's memberUid values are). As a second lock, jitform bounds
// the whole entry with sudoNotBefore/sudoNotAfter while it holds only
// granted users, so that sudo itself (with SUDOERS_TIMED) refuses the rule
// after the window even if jitform never runs again:
//
//   - A role with declared members (members = [...]) or given a member
//     without a window end is standing: jitform removes any bound from it.
//   - A role that gains granted users while it keeps no other user gets
//     sudoNotBefore = now - sudoSkew and sudoNotAfter = the latest of
//     those grants' window ends.
//   - A role that already carries a bound and gains a granted user has its
//     sudoNotAfter moved to the later of the two ends (the union of the
//     active windows); sudoNotBefore is kept.
//   - A role that already holds users but no bound is left unbounded:
//     writing one would cut those users' sudo off at a window not theirs.
//   - A role that jitform empties loses its bound, so the next grant
//     starts a fresh one.
//
// The bound travels in the same Modify as the sudoUser change: a user is
// never added without it.

// sudoSkew: sudoNotBefore is set this far before the write, so a host
// whose clock is a little behind still honours a rule that just started.
const sudoSkew = 5 * time.Minute

// generalizedTime is the form of sudoNotBefore/sudoNotAfter values.
const generalizedTime = "20060102150405Z"

// parseSudoTime reads a sudoNotBefore/sudoNotAfter value (GeneralizedTime,
// with or without fractional seconds).
func parseSudoTime(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{generalizedTime, "20060102150405.999999999Z", "200601021504Z", "20060102150405-0700", "20060102150405.999999999-0700"} {
		if ts, err := time.Parse(layout, v); err == nil {
			return ts.UTC(), true
		}
	}
	return time.Time{}, false
}

// latest is the latest parsable time among values (sudo uses the last
// sudoNotAfter when there are several).
func latest(values []string) (time.Time, bool) {
	var out time.Time
	ok := false
	for _, v := range values {
		if ts, good := parseSudoTime(v); good && (!ok || ts.After(out)) {
			out, ok = ts, true
		}
	}
	return out, ok
}

// sudoBounds adds to req what the role's bound becomes after this change.
// kept is how many sudoUser values the role held before the change and
// still holds after it, after how many it holds once the change is made;
// adds are the members this Modify adds.
func (t *target) sudoBounds(req *goldap.ModifyRequest, g *config.Group, ge *groupEntry, kept, after int, adds []providers.Member) {
	bounded := len(ge.notBefore) > 0 || len(ge.notAfter) > 0
	clear := func() {
		if bounded {
			req.Replace("sudoNotBefore", nil)
			req.Replace("sudoNotAfter", nil)
		}
	}
	standing := len(g.Members) > 0
	var end time.Time
	for _, m := range adds {
		if m.Expires.IsZero() {
			standing = true
		} else if m.Expires.After(end) {
			end = m.Expires
		}
	}
	switch {
	case standing:
		clear()
	case after <= 0:
		clear()
	case len(adds) == 0:
		// Removals only: the remaining users' windows are not known
		// here; the bound stays (it can only be too late, never too
		// early for them).
	case bounded:
		if old, ok := latest(ge.notAfter); ok && !old.Before(end) {
			return
		}
		req.Replace("sudoNotAfter", []string{end.UTC().Format(generalizedTime)})
		if len(ge.notBefore) == 0 {
			req.Replace("sudoNotBefore", []string{t.clock().Add(-sudoSkew).UTC().Format(generalizedTime)})
		}
	case kept == 0:
		req.Replace("sudoNotBefore", []string{t.clock().Add(-sudoSkew).UTC().Format(generalizedTime)})
		req.Replace("sudoNotAfter", []string{end.UTC().Format(generalizedTime)})
	}
}

// SetKinds: an OpenLDAP directory holds groups and sudoRoles (rights are
// Windows-only). On Active Directory sudo roles are not offered (the sudo
// AD schema is not tested here): the core reports them as unsupported and
// plans nothing for them.
func (t *target) SetKinds() []string {
	if t.ad() {
		return []string{config.SetGroup}
	}
	return []string{config.SetGroup, config.SetSudoRole}
}

var _ providers.SetKinds = (*target)(nil)
