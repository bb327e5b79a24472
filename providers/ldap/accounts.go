package ldap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/providers"
)

// Accounts (account blocks with dn = "…") on a live directory:
//
//   - openldap: the ppolicy overlay locks an entry that carries
//     pwdAccountLockedTime. jitform disables by writing "000001010000Z"
//     (ppolicy: locked until an administrator unlocks) and enables by
//     deleting the attribute. A new password is set with the Password
//     Modify extended operation (RFC 3062), so the server hashes it by
//     its own password-hash policy.
//   - active_directory: userAccountControl's ACCOUNTDISABLE bit (0x2),
//     read, changed and written back with every other bit kept. A new
//     password is written to unicodePwd (the password in double quotes,
//     UTF-16LE), which Active Directory accepts only over an encrypted
//     connection.
//
// A password is only ever sent over TLS (ldaps:// or StartTLS): on a
// plain connection the change fails before anything is written. Each
// account's change is its own round trips: the password first, then the
// enabled state; only a server result code decides done or failed, and a
// write whose answer never came is unknown.

// LockedForever is the pwdAccountLockedTime jitform writes to disable an
// OpenLDAP account: ppolicy keeps it locked until the attribute goes.
const LockedForever = "000001010000Z"

const uacAccountDisable = 0x2

var _ providers.AccountManager = (*target)(nil)

func (t *target) accountAttrs() []string {
	if t.ad() {
		return []string{"objectClass", "userAccountControl"}
	}
	// pwdAccountLockedTime is operational: it comes back only when asked.
	return []string{"objectClass", "pwdAccountLockedTime"}
}

// ReadAccounts reads each account entry (one base search per account,
// concurrently, bounded by max_concurrency).
func (t *target) ReadAccounts(ctx context.Context, accounts []*config.Account) (map[string]providers.AccountState, error) {
	out := make(map[string]providers.AccountState, len(accounts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range accounts {
		wg.Go(func() {
			st := t.readAccount(ctx, a)
			mu.Lock()
			out[a.Addr] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %d account(s) on %s: %w", len(accounts), t.addr, err)
	}
	return out, nil
}

func (t *target) readAccount(ctx context.Context, a *config.Account) providers.AccountState {
	if a.Ephemeral {
		return t.readInstances(ctx, a)
	}
	if a.DN == "" {
		return providers.AccountState{Err: fmt.Errorf("account %s on %s: no dn (an ldap account names its entry: dn = \"uid=…\")", a.Addr, t.addr)}
	}
	e, err := t.baseRead(ctx, a.DN, t.accountAttrs())
	if err != nil {
		return providers.AccountState{Err: fmt.Errorf("read account %s (%q) on %s: %w", a.Addr, a.DN, t.addr, err)}
	}
	if e == nil {
		return providers.AccountState{}
	}
	en, err := t.enabled(e)
	if err != nil {
		return providers.AccountState{Err: fmt.Errorf("read account %s on %s: %w", a.Addr, t.addr, err)}
	}
	return providers.AccountState{Exists: true, Enabled: en}
}

func (t *target) enabled(e *goldap.Entry) (bool, error) {
	if t.ad() {
		uac, err := userAccountControl(e)
		return uac&uacAccountDisable == 0, err
	}
	return len(e.GetAttributeValues("pwdAccountLockedTime")) == 0, nil
}

func userAccountControl(e *goldap.Entry) (int64, error) {
	vs := e.GetAttributeValues("userAccountControl")
	if len(vs) != 1 {
		return 0, fmt.Errorf("entry %q has %d userAccountControl values, want 1", e.DN, len(vs))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("entry %q: userAccountControl %q is not a number", e.DN, vs[0])
	}
	return n, nil
}

// SetAccounts makes each change; changes to different accounts run
// concurrently. Outcomes keep the order of the changes.
func (t *target) SetAccounts(ctx context.Context, changes []providers.AccountChange) ([]providers.AccountOutcome, error) {
	outs := make([]providers.AccountOutcome, len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Go(func() {
			st, err := t.setAccount(ctx, c)
			outs[i] = providers.AccountOutcome{Account: c.Account.Addr, Change: c, Status: st, Err: err}
		})
	}
	wg.Wait()
	return outs, nil
}

// stateChange is the Modify that brings entry e to the wanted enabled
// state (no changes when it is already so).
func (t *target) stateChange(e *goldap.Entry, enable bool) (*goldap.ModifyRequest, error) {
	state := goldap.NewModifyRequest(e.DN, nil)
	if t.ad() {
		uac, err := userAccountControl(e)
		if err != nil {
			return nil, err
		}
		want := uac | uacAccountDisable
		if enable {
			want = uac &^ uacAccountDisable
		}
		if want != uac {
			// Delete the value read and add the new one: if someone
			// changed the account meanwhile the server refuses (16 or
			// 53) instead of overwriting their bits.
			state.Delete("userAccountControl", []string{strconv.FormatInt(uac, 10)})
			state.Add("userAccountControl", []string{strconv.FormatInt(want, 10)})
		}
		return state, nil
	}
	locked := e.GetAttributeValues("pwdAccountLockedTime")
	switch {
	case enable && len(locked) > 0:
		state.Delete("pwdAccountLockedTime", nil)
	case !enable && len(locked) == 0:
		state.Add("pwdAccountLockedTime", []string{LockedForever})
	}
	return state, nil
}

// secure reports whether the connection is encrypted (ldaps:// or
// StartTLS).
func (t *target) secure() bool {
	_, ok := t.conn.TLSConnectionState()
	return ok
}

// setAccount sets the password (when the change carries one), then the
// enabled state. Errors never contain the password.
func (t *target) setAccount(ctx context.Context, c providers.AccountChange) (providers.Status, error) {
	a := c.Account
	verb := "disable"
	if c.Enable {
		verb = "enable"
	}
	fail := func(err error) (providers.Status, error) {
		return providers.Failed, fmt.Errorf("%s account %s (%q) on %s: %w", verb, a.Addr, a.DN, t.addr, err)
	}
	if c.Instance != nil {
		return t.setInstance(ctx, c)
	}
	if a.Ephemeral {
		return fail(errors.New("an ephemeral account's change names no account"))
	}
	if a.DN == "" {
		return fail(errors.New("no dn"))
	}
	pw := ""
	if c.Password.IsSet() {
		pw = c.Password.Reveal()
		if !t.secure() {
			return fail(errors.New("refusing to send a password over an unencrypted connection: use ldaps:// or StartTLS"))
		}
	}
	e, err := t.baseRead(ctx, a.DN, t.accountAttrs())
	if err != nil {
		return fail(fmt.Errorf("read before writing: %w", err))
	}
	if e == nil {
		return fail(errors.New("no such entry"))
	}
	state, err := t.stateChange(e, c.Enable)
	if err != nil {
		return fail(err)
	}
	if pw == "" && len(state.Changes) == 0 {
		return providers.Already, nil
	}
	if pw != "" {
		err := t.setPassword(ctx, e.DN, pw)
		if err != nil {
			st := classify(err)
			if st == providers.Already {
				st = providers.Failed
			}
			return st, fmt.Errorf("%s account %s (%q) on %s: set the new password: %w", verb, a.Addr, a.DN, t.addr, scrub(err, pw))
		}
		// A password change can change the lock: ppolicy removes
		// pwdAccountLockedTime when an administrator sets a password.
		// Read again, so a locked account is never left unlocked.
		e, err = t.baseRead(ctx, a.DN, t.accountAttrs())
		if err == nil && e == nil {
			err = errors.New("the entry is gone")
		}
		if err == nil {
			state, err = t.stateChange(e, c.Enable)
		}
		if err != nil {
			st := providers.Unknown // the password changed; the state is not known to be right
			return st, fmt.Errorf("%s account %s (%q) on %s: read again after setting the password: %w", verb, a.Addr, a.DN, t.addr, err)
		}
	}
	done := pw != ""
	if len(state.Changes) > 0 {
		err := t.modify(ctx, state)
		if err != nil {
			st := classify(err)
			if st == providers.Already {
				st = providers.Failed // the account changed under us: nothing written
			}
			what := "lock it (pwdAccountLockedTime)"
			if c.Enable {
				what = "unlock it (pwdAccountLockedTime)"
			}
			if t.ad() {
				what = "write userAccountControl"
			}
			if done && st == providers.Failed && !c.Enable {
				// The password was rotated but the account is not
				// locked: it is not as wanted.
				what += " after the password was rotated"
			}
			return st, fmt.Errorf("%s account %s (%q) on %s: %s: %w", verb, a.Addr, a.DN, t.addr, what, scrub(err, pw))
		}
	}
	return providers.Done, nil
}

// setPassword sets entryDN's password: the Password Modify extended
// operation on OpenLDAP, a unicodePwd replace on Active Directory.
func (t *target) setPassword(ctx context.Context, entryDN, pw string) error {
	if t.ad() {
		req := goldap.NewModifyRequest(entryDN, nil)
		req.Replace("unicodePwd", []string{unicodePwd(pw)})
		return t.modify(ctx, req)
	}
	return t.write(ctx, func() error {
		_, err := t.conn.PasswordModify(goldap.NewPasswordModifyRequest(entryDN, "", pw))
		return err
	}, func(began time.Time, err error) {
		debuglog.Op(ctx, t.log, "ldap password modify", began, scrubbed(err, pw), slog.String("target", t.addr), slog.String("dn", entryDN), ldapCode(err))
	})
}

func scrubbed(err error, pw string) error {
	if err == nil {
		return nil
	}
	return scrub(err, pw)
}

// unicodePwd is Active Directory's password value: the password in double
// quotes, encoded as UTF-16LE.
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}
