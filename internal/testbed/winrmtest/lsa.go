package winrmtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// User rights (local security policy) and local user accounts.
//
// Rights are modelled as the LSA holds them: per right, the SIDs of the
// accounts it is assigned to, orphaned SIDs included (a deleted domain
// account keeps its assignments). What a script does with them is read
// from its text: the C# P/Invoke declarations of the LSA calls compiled by
// Add-Type, and the call sites of the class's methods. Local users are
// modelled as ADSI's WinNT provider shows them: UserFlags (with
// ADS_UF_ACCOUNTDISABLE, 0x2), a password set with IADsUser::SetPassword,
// property changes kept in ADSI's cache until CommitChanges.

// NTSTATUS codes of the LSA calls, as the fake returns them.
const (
	statusNoMoreEntries     = 0x8000001A // LsaEnumerateAccountsWithUserRight: nobody holds it
	statusObjectNameNotFnd  = 0xC0000034 // LsaRemoveAccountRights: the account holds no right at all
	statusNoSuchPrivilege   = 0xC0000060 // the right's name is not a privilege or logon right
	statusAccessDeniedNT    = 0xC0000022
	hrUserNotFound          = 0x800708AD // NERR_UserNotFound from ADSI WinNT
	hrPasswordPolicy        = 0x800708C5 // NERR_PasswordTooShort: the password policy refuses it
	passwordPolicyMinLength = 8
)

var ntMessage = map[uint32]string{
	statusObjectNameNotFnd: "The system cannot find the file specified",
	statusNoSuchPrivilege:  "A specified privilege does not exist",
	statusAccessDeniedNT:   "Access is denied",
}

// User is a local user account.
type User struct {
	Name, SID string
	Disabled  bool   // ADS_UF_ACCOUNTDISABLE
	Password  string // the current password (the fake's record, for CheckPassword)
	// PasswordSets counts IADsUser::SetPassword calls that succeeded.
	PasswordSets int
}

// rightTraits: what a script does with user rights and local users.
type rightTraits struct {
	lsaType      bool     // Add-Type of a C# class JitformLsa declaring the LSA calls
	enumerates   bool     // LsaEnumerateAccountsWithUserRight declared and [JitformLsa]::Holders( called
	adds         bool     // LsaAddAccountRights declared and [JitformLsa]::Add( called
	removes      bool     // LsaRemoveAccountRights declared and [JitformLsa]::Remove( called
	prereads     bool     // the holders are read before the call (tells done from already)
	rereads      bool     // the holders are read again after the call
	alreadyOnRm  []string // NTSTATUS the script classifies as already on remove
	switchFirst  bool     // the right's switch is registered before LsaAddAccountRights
	storesRight  bool     // the switch's description carries the right
	readsUsers   bool     // WinNT user bound by name, UserFlags read
	notFoundCode bool     // 0x800708AD (NERR_UserNotFound) is read as "does not exist"
	setsPassword bool     // IADsUser::SetPassword through psbase.Invoke
	setsFlags    bool     // UserFlags set through InvokeSet
	commits      bool     // CommitChanges: ADSI writes its property cache
	rereadsUser  bool     // the user's flags are read again after the change
	// Account switches: registered before the account is enabled, deleted
	// by a change without one.
	acctSwitch, acctSwitchFirst, acctUnregisters bool
}

var (
	reLsaType     = regexp.MustCompile(`(?s)public static class JitformLsa .*Add-Type -TypeDefinition \$LsaCode`)
	reLsaEnum     = regexp.MustCompile(`DllImport\("advapi32\.dll"\)\] static extern uint LsaEnumerateAccountsWithUserRight\(`)
	reLsaAdd      = regexp.MustCompile(`DllImport\("advapi32\.dll"\)\] static extern uint LsaAddAccountRights\(`)
	reLsaRemove   = regexp.MustCompile(`DllImport\("advapi32\.dll"\)\] static extern uint LsaRemoveAccountRights\(`)
	reCallHolders = regexp.MustCompile(`\[JitformLsa\]::Holders\(`)
	reCallAdd     = regexp.MustCompile(`\[JitformLsa\]::Add\(\$right, \$c\.sid\)`)
	reCallRemove  = regexp.MustCompile(`\[JitformLsa\]::Remove\(\$right, \$c\.sid\)`)
	rePreread     = regexp.MustCompile(`\$before = @\(\[JitformLsa\]::Holders\(\$right\)\) -contains \$c\.sid`)
	reRereadRight = regexp.MustCompile(`\$present = @\(\[JitformLsa\]::Holders\(\$right\)\) -contains \$c\.sid`)
	reRightAlr    = regexp.MustCompile(`\$RightAlreadyOnRemove\s*=\s*@\(([^)]*)\)`)
	reRightSwitch = regexp.MustCompile(`(?s)Register-Switch \$c\.right \$c\.sid \$c.*\[JitformLsa\]::Add\(\$right`)
	reRightAfter  = regexp.MustCompile(`(?s)\[JitformLsa\]::Add\(\$right.*Register-Switch \$c\.right \$c\.sid \$c`)
	reStoresRight = regexp.MustCompile(`@\{ grant = [^\n]*right = \[string\]\$c\.right`)
	reBindUser    = regexp.MustCompile(`\[ADSI\]\('WinNT://\./' \+ \[string\]\$x\.name \+ ',user'\)`)
	reUserFlags   = regexp.MustCompile(`InvokeGet\('UserFlags'\)[^\n]*|-band 0x2`)
	reNotFound    = regexp.MustCompile(`\(Get-HResult \$_\.Exception\) -eq '0x800708AD'`)
	reSetPassword = regexp.MustCompile(`\$u\.psbase\.Invoke\('SetPassword', \[string\]\$x\.password\)`)
	reSetFlags    = regexp.MustCompile(`\$u\.psbase\.InvokeSet\('UserFlags', \$flags\)`)
	reCommit      = regexp.MustCompile(`\$u\.psbase\.InvokeSet\('UserFlags', \$flags\)\s*\n\s*\$u\.psbase\.CommitChanges\(\)`)
	reRereadUser  = regexp.MustCompile(`\$now = \(\[int\]\(\[ADSI\]\('WinNT://\./' \+ \[string\]\$x\.name \+ ',user'\)\)\.psbase\.InvokeGet\('UserFlags'\) -band 0x2\) -eq 0`)

	reAcctSwitch = regexp.MustCompile(`Register-Switch 'ACCOUNT' \$usid \$x`)
	reAcctFirst  = regexp.MustCompile(`(?s)Register-Switch 'ACCOUNT' \$usid \$x.*\$u\.psbase\.InvokeSet\('UserFlags', \$flags\)`)
	reAcctUnreg  = regexp.MustCompile(`\$r\.switch = Unregister-Switch 'ACCOUNT' \$usid`)

	// The switch's right removal.
	reSwLsaRemove = regexp.MustCompile(`(?s)static extern uint LsaRemoveAccountRights\(.*Add-Type -TypeDefinition \$LsaCode.*\[JitformLsa\]::Remove\(\[string\]\$d\.right, \$d\.member\)`)
)

func readRightTraits(script string) rightTraits {
	t := rightTraits{
		lsaType:      reLsaType.MatchString(script),
		prereads:     rePreread.MatchString(script),
		rereads:      reRereadRight.MatchString(script),
		switchFirst:  reRightSwitch.MatchString(script) && !reRightAfter.MatchString(script),
		storesRight:  reStoresRight.MatchString(script),
		readsUsers:   reBindUser.MatchString(script) && reUserFlags.MatchString(script),
		notFoundCode: reNotFound.MatchString(script),
		setsPassword: reSetPassword.MatchString(script),
		setsFlags:    reSetFlags.MatchString(script),
		commits:      reCommit.MatchString(script),
		rereadsUser:  reRereadUser.MatchString(script),
	}
	t.acctSwitch = reAcctSwitch.MatchString(script)
	t.acctSwitchFirst = reAcctFirst.MatchString(script)
	t.acctUnregisters = reAcctUnreg.MatchString(script)
	t.enumerates = t.lsaType && reLsaEnum.MatchString(script) && reCallHolders.MatchString(script)
	t.adds = t.lsaType && reLsaAdd.MatchString(script) && reCallAdd.MatchString(script)
	t.removes = t.lsaType && reLsaRemove.MatchString(script) && reCallRemove.MatchString(script)
	if m := reRightAlr.FindStringSubmatch(script); m != nil {
		for _, h := range reHResult.FindAllStringSubmatch(m[1], -1) {
			t.alreadyOnRm = append(t.alreadyOnRm, strings.ToUpper(h[1][2:]))
		}
	}
	return t
}

// reRightName: the shape of the privilege and logon-right constants
// (SeBackupPrivilege, SeRemoteInteractiveLogonRight, SeDenyNetworkLogonRight).
var reRightName = regexp.MustCompile(`^Se[A-Za-z]+(Privilege|Right)$`)

func knownRight(name string) bool { return reRightName.MatchString(name) }

func ntError(call string, st uint32) string {
	msg, ok := ntMessage[st]
	if !ok {
		msg = "Unknown error"
	}
	return fmt.Sprintf("%s: %s (0x%08X)", call, msg, st)
}

const noLsaType = "Unable to find type [JitformLsa]."

// holders is LsaEnumerateAccountsWithUserRight: the SIDs holding a right.
func (h *Host) holders(right string) ([]string, uint32) {
	if !knownRight(right) {
		return nil, statusNoSuchPrivilege
	}
	for k, v := range h.Rights {
		if strings.EqualFold(k, right) {
			return append([]string(nil), v...), 0
		}
	}
	return nil, 0 // STATUS_NO_MORE_ENTRIES, which the class reads as none
}

func (h *Host) rightKey(right string) string {
	for k := range h.Rights {
		if strings.EqualFold(k, right) {
			return k
		}
	}
	return right
}

// lsaAdd is LsaAddAccountRights: any well-formed SID may be given a right
// (the LSA creates an account object for it); adding a held right succeeds.
func (h *Host) lsaAdd(right, sid string) uint32 {
	if !knownRight(right) {
		return statusNoSuchPrivilege
	}
	k := h.rightKey(right)
	for _, s := range h.Rights[k] {
		if strings.EqualFold(s, sid) {
			return 0
		}
	}
	if h.Rights == nil {
		h.Rights = map[string][]string{}
	}
	if !h.IneffectiveWrites {
		h.Rights[k] = append(h.Rights[k], strings.ToUpper(sid))
	}
	return 0
}

// lsaRemove is LsaRemoveAccountRights (AllRights false): an account that
// holds no right at all is STATUS_OBJECT_NAME_NOT_FOUND; one that holds
// others but not this one succeeds.
func (h *Host) lsaRemove(right, sid string) uint32 {
	if !knownRight(right) {
		return statusNoSuchPrivilege
	}
	holdsAny := false
	for _, v := range h.Rights {
		for _, s := range v {
			if strings.EqualFold(s, sid) {
				holdsAny = true
			}
		}
	}
	if !holdsAny {
		return statusObjectNameNotFnd
	}
	k := h.rightKey(right)
	if h.IneffectiveWrites {
		return 0
	}
	var keep []string
	for _, s := range h.Rights[k] {
		if !strings.EqualFold(s, sid) {
			keep = append(keep, s)
		}
	}
	h.Rights[k] = keep
	return 0
}

// readRights answers the read script's rights.
func (h *Host) readRights(t rightTraits, data []byte) ([]map[string]any, bool) {
	var req struct {
		Rights []struct {
			Key  string `json:"key"`
			Name string `json:"name"`
		} `json:"rights"`
	}
	if err := json.Unmarshal(data, &req); err != nil || len(req.Rights) == 0 {
		return nil, false
	}
	out := []map[string]any{}
	for _, r := range req.Rights {
		st := map[string]any{"key": r.Key}
		switch {
		case !t.enumerates:
			st["error"] = noLsaType
		default:
			sids, code := h.holders(r.Name)
			if code != 0 {
				st["error"] = ntError("LsaEnumerateAccountsWithUserRight", code)
				break
			}
			hs := []map[string]string{}
			for _, s := range sids {
				hs = append(hs, map[string]string{"sid": s, "name": h.name(s)})
			}
			st["holders"] = unwrap(hs)
		}
		out = append(out, st)
	}
	return out, true
}

type rightChange struct {
	Right    string          `json:"right"`
	Action   string          `json:"action"`
	SID      string          `json:"sid"`
	SwitchAt json.RawMessage `json:"switch_at"`
	Grant    string          `json:"grant"`
}

// applyRight is the apply script's Set-Right for one change. killed is
// called after each LSA write.
func (h *Host) applyRight(t traits, c rightChange, allowDC bool, killed func() bool) (map[string]any, error) {
	rt := t.rights
	fail := func(msg string) map[string]any { return map[string]any{"status": "failed", "error": msg} }
	if !reSID.MatchString(c.SID) {
		return fail("not a SID"), nil
	}
	if t.checksDomainRole && h.DomainController && !allowDC {
		return fail("this host is a domain controller: refused without allow_domain_controller"), nil
	}
	add := c.Action == "add"
	if (add && !rt.adds) || (!add && !rt.removes) || (rt.prereads && !rt.enumerates) {
		return fail(noLsaType), nil
	}
	sid := strings.ToUpper(c.SID)
	present := func() bool {
		sids, _ := h.holders(c.Right)
		for _, s := range sids {
			if strings.EqualFold(s, sid) {
				return true
			}
		}
		return false
	}
	before := present()
	if _, code := h.holders(c.Right); rt.prereads && code != 0 {
		return fail(ntError("LsaEnumerateAccountsWithUserRight", code)), nil
	}
	wantSwitch := add && t.sw.registers && len(c.SwitchAt) > 0 && string(c.SwitchAt) != "null" && string(c.SwitchAt) != "0" && string(c.SwitchAt) != `""`
	registered := false
	register := func() error {
		if err := h.registerSwitch(t.sw, c.Right, sid, c.SwitchAt, c.Grant, false, rt.storesRight); err != nil {
			return fmt.Errorf("the dead-man's switch could not be registered, so the right was not granted: %v", err)
		}
		registered = true
		return nil
	}
	if wantSwitch && rt.switchFirst {
		if err := register(); err != nil {
			return fail(err.Error()), nil
		}
	}
	call, code := "LsaRemoveAccountRights", uint32(0)
	if add {
		call, code = "LsaAddAccountRights", h.lsaAdd(c.Right, sid)
	} else {
		code = h.lsaRemove(c.Right, sid)
	}
	if killed() {
		return nil, errKilled
	}
	if wantSwitch && !rt.switchFirst {
		if err := register(); err != nil {
			return fail(err.Error()), nil
		}
	}
	st := map[string]any{"status": "done"}
	switch {
	case code == 0 && rt.prereads && before == add:
		st["status"] = "already"
	case code == 0:
	case !add && contains(rt.alreadyOnRm, code):
		st["status"] = "already"
	default:
		st = fail(ntError(call, code))
	}
	if rt.rereads && st["status"] != "failed" && present() != add {
		st = fail(fmt.Sprintf("%s reported %s, but the right's holders read again say otherwise", call, st["status"]))
	}
	switch {
	case st["status"] == "failed" && registered, st["status"] != "failed" && !registered && t.sw.unregisters:
		if r, err := h.unregisterSwitch(c.Right, sid); err != nil {
			st["switch_error"] = err.Error()
		} else {
			st["switch"] = r
		}
	case registered:
		st["switch"] = "registered"
	}
	return st, nil
}

// Holders returns the SIDs holding a right, sorted.
func (h *Host) Holders(right string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := append([]string(nil), h.Rights[h.rightKey(right)]...)
	sort.Strings(out)
	return out
}

// SetHolders sets a right's holders (SIDs; orphaned SIDs may be among them).
func (h *Host) SetHolders(right string, sids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Rights == nil {
		h.Rights = map[string][]string{}
	}
	h.Rights[h.rightKey(right)] = append([]string(nil), sids...)
}

// AddUser creates a local user account.
func (h *Host) AddUser(name, sid, password string, enabled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Users = append(h.Users, &User{Name: name, SID: strings.ToUpper(sid), Password: password, Disabled: !enabled})
	if h.Accounts == nil {
		h.Accounts = map[string]string{}
	}
	h.Accounts[strings.ToUpper(sid)] = strings.ToUpper(hostLabel(h.Name)) + `\` + name
}

// UserState returns a copy of a local user, and whether it exists.
func (h *Host) UserState(name string) (User, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.user(name); u != nil {
		return *u, true
	}
	return User{}, false
}

// CheckPassword is a logon attempt: it succeeds when the user exists, is
// enabled, and the password is its current one.
func (h *Host) CheckPassword(name, password string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.user(name)
	return u != nil && !u.Disabled && u.Password == password
}

// user binds WinNT://./<name>,user: case-insensitively, by name.
func (h *Host) user(name string) *User {
	for _, u := range h.Users {
		if strings.EqualFold(u.Name, name) {
			return u
		}
	}
	return nil
}

func (h *Host) readUsers(t rightTraits, data []byte) ([]map[string]any, bool) {
	var req struct {
		Accounts []struct {
			Key  string `json:"key"`
			Name string `json:"name"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(data, &req); err != nil || len(req.Accounts) == 0 {
		return nil, false
	}
	out := []map[string]any{}
	for _, a := range req.Accounts {
		st := map[string]any{"key": a.Key}
		u := h.user(a.Name)
		switch {
		case !t.readsUsers:
			st["error"] = "The property 'UserFlags' cannot be found on this object."
		case strings.ContainsAny(a.Name, `,/\`):
			st["error"] = "user name has characters ADSI paths cannot carry"
		case u == nil && t.notFoundCode:
			st["exists"], st["enabled"] = false, false
		case u == nil:
			st["error"] = fmt.Sprintf(`Exception calling "InvokeGet" with "1" argument(s): "The user name could not be found." (0x%08X)`, uint32(hrUserNotFound))
		default:
			st["exists"], st["enabled"] = true, !u.Disabled
		}
		out = append(out, st)
	}
	return out, true
}

type userChange struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	Enable   bool   `json:"enable"`
	Password string `json:"password"`
	SwitchAt int64  `json:"switch_at"`
	Account  string `json:"account"`
	Grant    string `json:"grant"`
}

// applyUser is the apply script's account change: SetPassword (when a
// password is given), UserFlags through the property cache, CommitChanges,
// and the flags read again.
func (h *Host) applyUser(t traits, c userChange, allowDC bool, killed func() bool) (map[string]any, error) {
	rt := t.rights
	fail := func(msg string) map[string]any { return map[string]any{"status": "failed", "error": msg} }
	if t.checksDomainRole && h.DomainController && !allowDC {
		return fail("this host is a domain controller: refused without allow_domain_controller"), nil
	}
	if strings.ContainsAny(c.Name, `,/\`) {
		return fail("user name has characters ADSI paths cannot carry"), nil
	}
	u := h.user(c.Name)
	if u == nil || !rt.readsUsers {
		return fail(`Exception calling "InvokeGet" with "1" argument(s): "The user name could not be found."`), nil
	}
	was := !u.Disabled
	wantSwitch := c.Enable && rt.acctSwitch && t.sw.registers && c.SwitchAt > 0
	registered := false
	if wantSwitch && rt.acctSwitchFirst {
		at, _ := json.Marshal(c.SwitchAt)
		if err := h.registerTask(t.sw, taskData{Grant: c.Grant, Group: "ACCOUNT", Member: u.SID, Account: c.Account}, at); err != nil {
			return fail("the dead-man's switch could not be registered, so the account was not enabled: " + err.Error()), nil
		}
		registered = true
	}
	failed := func(msg string) map[string]any {
		st := fail(msg)
		if registered { // the script's catch deletes the switch it registered
			if r, err := h.unregisterSwitch("ACCOUNT", u.SID); err != nil {
				st["switch_error"] = err.Error()
			} else {
				st["switch"] = r
			}
		}
		return st
	}
	if c.Password != "" {
		if !rt.setsPassword {
			return failed("the password was not set"), nil
		}
		if len(c.Password) < passwordPolicyMinLength {
			return failed(`Exception calling "Invoke" with "2" argument(s): "The password does not meet the password policy requirements. Check the minimum password length, password complexity and password history requirements."`), nil
		}
		u.Password, u.PasswordSets = c.Password, u.PasswordSets+1
	}
	if rt.setsFlags && rt.commits && !h.IneffectiveWrites {
		u.Disabled = !c.Enable
	}
	if killed() {
		return nil, errKilled
	}
	st := map[string]any{"status": "done"}
	if c.Password == "" && was == c.Enable {
		st["status"] = "already"
	}
	if rt.rereadsUser && u.Disabled == c.Enable {
		what := "disabled"
		if c.Enable {
			what = "enabled"
		}
		st = fail("the account's flags read again say it is not " + what)
	}
	switch {
	case registered && st["status"] != "failed":
		st["switch"] = "registered"
	case registered, rt.acctUnregisters && t.sw.unregisters:
		if r, err := h.unregisterSwitch("ACCOUNT", u.SID); err != nil {
			st["switch_error"] = err.Error()
		} else {
			st["switch"] = r
		}
	}
	return st, nil
}
