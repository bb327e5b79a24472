package winrm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// Windows local accounts (account blocks on a winrm target): read with
// ADSI (WinNT://./<name>,user, UserFlags: enabled unless
// ADS_UF_ACCOUNTDISABLE 0x2 is set), enabled or disabled through UserFlags
// after the password (rotate_password) is set with IADsUser::SetPassword.
// The password travels in the apply script's stdin JSON only: never on the
// command line, never echoed back, scrubbed from every error.

// ReadAccounts reads every account of the host in one run
// (providers.AccountManager).
func (t *target) ReadAccounts(ctx context.Context, accounts []*config.Account) (map[string]providers.AccountState, error) {
	req := newReadRequest()
	for _, a := range accounts {
		req.Accounts = append(req.Accounts, AccountRef{Key: a.Addr, Name: a.AccountName})
	}
	out := make(map[string]providers.AccountState, len(accounts))
	if len(accounts) == 0 {
		return out, nil
	}
	t.progress("%s: reading %d account(s)", t.addr, len(accounts))
	var resp ReadResponse
	err := t.run(ctx, "read accounts", ReadScript, req, &resp)
	if err == nil && len(resp.Accounts) != len(req.Accounts) {
		err = fmt.Errorf("%s: read accounts on %s: the host answered %d account(s) for %d asked", t.addr, t.host, len(resp.Accounts), len(req.Accounts))
	}
	if err == nil {
		err = t.domainControllerError(resp.DomainRole)
	}
	// An account with a pending dead-man's switch is one the host itself
	// disables at the switch's time: AccountState.Expires, which the
	// planner compares with the window that keeps the account enabled.
	// The switch names the account as the apply script was given it.
	switchAt := map[string]time.Time{}
	for _, sw := range resp.Switches {
		if sw.Error == "" && sw.At > 0 && sw.Account != "" && strings.EqualFold(sw.Group, "ACCOUNT") {
			switchAt[strings.ToUpper(sw.Account)] = time.Unix(sw.At, 0).UTC()
		}
	}
	for i, a := range accounts {
		switch {
		case err != nil:
			out[a.Addr] = providers.AccountState{Err: err}
		case resp.Accounts[i].Key != a.Addr:
			out[a.Addr] = providers.AccountState{Err: fmt.Errorf("%s: the host answered for %q where %q was asked", t.addr, resp.Accounts[i].Key, a.Addr)}
		case resp.Accounts[i].Error != "":
			out[a.Addr] = providers.AccountState{Err: fmt.Errorf("%s: read account %q on %s: %s", t.addr, a.AccountName, t.host, resp.Accounts[i].Error)}
		default:
			st := providers.AccountState{Exists: resp.Accounts[i].Exists, Enabled: resp.Accounts[i].Exists && resp.Accounts[i].Enabled}
			if st.Exists {
				st.Expires = switchAt[strings.ToUpper(a.AccountName)]
			}
			out[a.Addr] = st
		}
	}
	return out, nil
}

// SetAccounts makes every account change of the host in one run
// (providers.AccountManager).
func (t *target) SetAccounts(ctx context.Context, changes []providers.AccountChange) ([]providers.AccountOutcome, error) {
	req := ApplyRequest{Op: "apply", AllowDomainController: t.allowDC, Changes: []Change{}, Accounts: []AccountSet{}}
	outs := make([]providers.AccountOutcome, len(changes))
	var secrets []string
	for i, c := range changes {
		outs[i] = providers.AccountOutcome{Account: c.Account.Addr, Change: c}
		set := AccountSet{Key: c.Account.Addr, Name: c.Account.AccountName, Enable: c.Enable}
		if c.Enable && !c.Expires.IsZero() {
			// The dead-man's switch: the host disables the account (with
			// a random password) at window end + grace if jitform has not.
			set.SwitchAt, set.Account, set.Grant = c.Expires.Add(SwitchGrace).Unix(), c.Account.AccountName, c.Grant
		}
		if c.Password.IsSet() {
			pw, err := c.Password.Value()
			if err != nil {
				return nil, fmt.Errorf("%s: the new password of %s: %w", t.addr, c.Account.Addr, err)
			}
			if pw == "" {
				return nil, fmt.Errorf("%s: the new password of %s is empty", t.addr, c.Account.Addr)
			}
			set.Password = pw
			secrets = append(secrets, pw)
		}
		req.Accounts = append(req.Accounts, set)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	scrub := func(err error) error {
		if err == nil {
			return nil
		}
		msg := err.Error()
		for _, s := range secrets {
			msg = strings.ReplaceAll(msg, s, "(sensitive)")
		}
		if msg == err.Error() {
			return err
		}
		return errors.New(msg)
	}
	t.progress("%s: applying %d account change(s)", t.addr, len(changes))
	var resp ApplyResponse
	if err := t.run(ctx, "apply account changes", ApplyScript, req, &resp); err != nil {
		st := providers.Failed
		if errors.Is(err, errStarted) {
			st = providers.Unknown
		}
		for i := range outs {
			outs[i].Status, outs[i].Err = st, scrub(err)
		}
		return outs, nil
	}
	for i := range outs {
		if i >= len(resp.Accounts) {
			outs[i].Status, outs[i].Err = providers.Unknown, fmt.Errorf("%s: no result for account change %d", t.addr, i)
			continue
		}
		r := resp.Accounts[i]
		if r.SwitchError != "" {
			t.progress("%s: %s: the dead-man's switch on %s: %s", t.addr, changes[i].Account.Addr, t.host, r.SwitchError)
		}
		what := "disable"
		if changes[i].Enable {
			what = "enable"
		}
		switch r.Status {
		case "done":
			outs[i].Status = providers.Done
		case "already":
			outs[i].Status = providers.Already
		case "unknown":
			outs[i].Status, outs[i].Err = providers.Unknown, scrub(fmt.Errorf("%s: %s account %s on %s: %s", t.addr, what, changes[i].Account.AccountName, t.host, r.Error))
		default:
			outs[i].Status, outs[i].Err = providers.Failed, scrub(fmt.Errorf("%s: %s account %s on %s: %s", t.addr, what, changes[i].Account.AccountName, t.host, r.Error))
		}
	}
	return outs, nil
}
