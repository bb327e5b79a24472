package ldif

import (
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // {SSHA} is SHA-1 by definition; it is what OpenLDAP verifies
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

// Accounts in an LDIF directory, as the servers keep them:
//
//   - openldap (ppolicy): an entry with pwdAccountLockedTime is locked
//     (disabled); without it, enabled. jitform locks with the value
//     "000001010000Z", ppolicy's "locked until an administrator unlocks".
//     A new password is stored as userPassword {SSHA} (salted SHA-1, what
//     slapd verifies by default).
//   - active_directory: userAccountControl's ACCOUNTDISABLE bit (0x2). A
//     password cannot be written to an AD export (unicodePwd is
//     write-only on a DC), so rotate_password is refused there.

// LockedForever is the pwdAccountLockedTime jitform writes to disable an
// account: ppolicy keeps it locked until the attribute is removed.
const LockedForever = "000001010000Z"

const uacAccountDisable = 0x2

// ReadAccounts reports each account's state, keyed by account address.
func (t *target) ReadAccounts(ctx context.Context, accounts []*config.Account) (map[string]providers.AccountState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := t.current()
	out := make(map[string]providers.AccountState, len(accounts))
	for _, a := range accounts {
		if a.Ephemeral {
			out[a.Addr] = t.readInstances(d, a)
			continue
		}
		i, err := findAccount(d, a)
		switch {
		case err != nil:
			out[a.Addr] = providers.AccountState{Err: fmt.Errorf("read account %s on %s: %w", a.Addr, t.addr, err)}
		case i < 0:
			out[a.Addr] = providers.AccountState{}
		default:
			en, err := t.enabled(d.entries[i])
			if err != nil {
				out[a.Addr] = providers.AccountState{Err: fmt.Errorf("read account %s on %s: %w", a.Addr, t.addr, err)}
				continue
			}
			out[a.Addr] = providers.AccountState{Exists: true, Enabled: en}
		}
	}
	return out, nil
}

// findAccount is the index of the account's entry, -1 when there is none.
func findAccount(d *directory, a *config.Account) (int, error) {
	if a.DN == "" {
		return -1, fmt.Errorf("account %s has no dn", a.Addr)
	}
	c, err := dn.Canonical(a.DN)
	if err != nil {
		return -1, fmt.Errorf("account %s: dn: %w", a.Addr, err)
	}
	if i, ok := d.byDN[c]; ok {
		return i, nil
	}
	return -1, nil
}

func (t *target) enabled(e *goldap.Entry) (bool, error) {
	if t.flavor == config.FlavorActiveDirectory {
		uac, err := userAccountControl(e)
		return uac&uacAccountDisable == 0, err
	}
	return len(values(e, "pwdAccountLockedTime")) == 0, nil
}

func userAccountControl(e *goldap.Entry) (int64, error) {
	vs := values(e, "userAccountControl")
	if len(vs) != 1 {
		return 0, fmt.Errorf("entry %q has %d userAccountControl values, want 1", e.DN, len(vs))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("entry %q: userAccountControl %q is not a number", e.DN, vs[0])
	}
	return n, nil
}

// SetAccounts re-reads the file, makes every change in memory and writes
// the file once, atomically, as Apply does for groups.
func (t *target) SetAccounts(ctx context.Context, changes []providers.AccountChange) ([]providers.AccountOutcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fresh, err := loadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("set accounts on %s: %w", t.addr, err)
	}
	d := fresh.clone()
	outs := make([]providers.AccountOutcome, 0, len(changes))
	changed := false
	for _, c := range changes {
		o := providers.AccountOutcome{Account: c.Account.Addr, Change: c}
		ch, err := t.setAccount(d, c)
		switch {
		case err != nil:
			o.Status, o.Err = providers.Failed, err
		case ch:
			o.Status, changed = providers.Done, true
		default:
			o.Status = providers.Already
		}
		outs = append(outs, o)
	}
	if !changed {
		t.dir = fresh
		return outs, nil
	}
	switch st, err := t.commit(d, fresh); st {
	case providers.Unknown:
		markAccountsDone(outs, st, err)
	case providers.Failed:
		markAccountsDone(outs, st, fmt.Errorf("set accounts on %s: %w", t.addr, err))
	}
	return outs, nil
}

func markAccountsDone(outs []providers.AccountOutcome, st providers.Status, err error) {
	for i := range outs {
		if outs[i].Status == providers.Done {
			outs[i].Status, outs[i].Err = st, err
		}
	}
}

// setAccount changes one account in d: the password first, then the
// enabled state; it reports whether the entry changed. Errors never hold
// the password.
func (t *target) setAccount(d *directory, c providers.AccountChange) (bool, error) {
	a := c.Account
	if c.Instance != nil {
		return t.setInstance(d, c)
	}
	if a.Ephemeral {
		return false, fmt.Errorf("account %s: an ephemeral account's change names no account", a.Addr)
	}
	i, err := findAccount(d, a)
	if err != nil {
		return false, err
	}
	if i < 0 {
		return false, fmt.Errorf("account %s: no entry %q in %s", a.Addr, a.DN, d.path)
	}
	e := d.entries[i]
	changed := false
	if c.Password.IsSet() {
		if t.flavor == config.FlavorActiveDirectory {
			return false, fmt.Errorf("account %s: an Active Directory export cannot hold a password (unicodePwd is write-only); rotate_password needs a live directory", a.Addr)
		}
		h, err := SSHA(c.Password.Reveal())
		if err != nil {
			return false, fmt.Errorf("account %s: hash the new password: %w", a.Addr, err)
		}
		setValues(e, "userPassword", []string{h})
		changed = true
	}
	if t.flavor == config.FlavorActiveDirectory {
		uac, err := userAccountControl(e)
		if err != nil {
			return false, fmt.Errorf("account %s: %w", a.Addr, err)
		}
		want := uac | uacAccountDisable
		if c.Enable {
			want = uac &^ uacAccountDisable
		}
		if want != uac {
			setValues(e, "userAccountControl", []string{strconv.FormatInt(want, 10)})
			changed = true
		}
	} else {
		locked := len(values(e, "pwdAccountLockedTime")) > 0
		switch {
		case c.Enable && locked:
			setValues(e, "pwdAccountLockedTime", nil)
			changed = true
		case !c.Enable && !locked:
			setValues(e, "pwdAccountLockedTime", []string{LockedForever})
			changed = true
		}
	}
	if changed && d.dirty != nil {
		d.dirty[i] = true
	}
	return changed, nil
}

// SSHA is the RFC 2307 {SSHA} userPassword value of pw with a random
// 8-byte salt: base64(SHA1(pw || salt) || salt).
func SSHA(pw string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return sshaWithSalt(pw, salt), nil
}

func sshaWithSalt(pw string, salt []byte) string {
	h := sha1.New() //nolint:gosec
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// CheckSSHA reports whether pw matches an {SSHA} userPassword value, as
// slapd would verify a bind.
func CheckSSHA(stored, pw string) bool {
	b64, ok := strings.CutPrefix(stored, "{SSHA}")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) <= sha1.Size {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sshaWithSalt(pw, raw[sha1.Size:])), []byte(stored)) == 1
}
