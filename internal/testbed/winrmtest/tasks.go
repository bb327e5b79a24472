package winrmtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/text/encoding/unicode"
)

// Scheduled tasks and logon sessions: the second locks of issue 15.
//
// The fake models Task Scheduler as the scripts use it: a task registered
// in \jitform\ with an action (an executable and its argument string), a
// one-time trigger, a principal and a description; tasks are listed and
// deleted; and a task whose trigger the host's clock passes runs its
// action. Like the rest of the fake, it cannot run PowerShell: what a
// registered action does is read from the script the action carries
// (powershell.exe -EncodedCommand), with the traits below.

// Task is a scheduled task on a host.
type Task struct {
	Path, Name  string    // \jitform\, 16 hex digits
	Execute     string    // the action's executable
	Arguments   string    // the action's argument string, exactly as registered
	At          time.Time // the one-time trigger
	UserID      string    // the principal it runs as (S-1-5-18: SYSTEM)
	Description string    // JSON: grant, group, member, at
	// Registered counts registrations of this name (a re-registration with
	// -Force replaces the task).
	Registered int
	dead       bool // its action could not run; it stays and does not run again
}

// Firing is one run of a task's action.
type Firing struct {
	Task    string // path and name
	At      time.Time
	Removed []string // "GROUPSID|MEMBERSID" removed by the run
	// SessionsEnded: sessions the run logged off (end_sessions).
	SessionsEnded int
	Error         string
}

// Session is a logon session on the host: console or RDP, of one user.
type Session struct {
	ID   int
	SID  string
	Kind string // "console", "rdp"
}

// switchTraits: what an apply script does with scheduled tasks.
type switchTraits struct {
	registers   bool   // Register-ScheduledTask in \jitform\
	beforeAdd   bool   // the switch is registered before the member is added
	unregisters bool   // Unregister-ScheduledTask of the membership's switch
	execute     string // New-ScheduledTaskAction -Execute '<this>'
	argument    string // the -Argument expression as written
	switchArgs  string // the argument string $SwitchAction evaluates to, "" if it cannot be evaluated
	userID      string // New-ScheduledTaskPrincipal -UserId '<this>'
	lists       bool   // the read script lists \jitform\ tasks
	// listsAccount: the listing carries the account a switch disables.
	listsAccount bool
	endSessions  bool // sessions are found by owner SID and logged off
	// storesEndSessions: the switch's description carries end_sessions.
	storesEndSessions bool
}

var (
	reRegister     = regexp.MustCompile(`Register-ScheduledTask -TaskPath '\\jitform\\'`)
	reBeforeAdd    = regexp.MustCompile(`(?s)Register-Switch \$gsid \$c\.sid \$c.*\$grp\.Add\(\$path\)`)
	reAfterAdd     = regexp.MustCompile(`(?s)\$grp\.Add\(\$path\).*Register-Switch \$gsid \$c\.sid \$c`)
	reUnregister   = regexp.MustCompile(`\$r\.switch = Unregister-Switch \$gsid \$c\.sid`)
	reUnregisterFn = regexp.MustCompile(`Unregister-ScheduledTask -TaskPath '\\jitform\\' -TaskName \$name -Confirm:\$false`)
	reAction       = regexp.MustCompile(`New-ScheduledTaskAction -Execute '([^']+)' -Argument ([^\n]+)`)
	reSwitchAction = regexp.MustCompile(`\$SwitchAction = '([^']*)' \+ \[Convert\]::ToBase64String\(\[Text\.Encoding\]::Unicode\.GetBytes\(\$SwitchScript\)\)`)
	reHereString   = regexp.MustCompile(`(?s)\$SwitchScript = @'\n(.*?)\n'@`)
	rePrincipal    = regexp.MustCompile(`New-ScheduledTaskPrincipal -UserId '([^']+)'`)
	reList         = regexp.MustCompile(`Get-ScheduledTask -TaskPath '\\jitform\\'`)
	reListAccount  = regexp.MustCompile(`\$s\.account = \[string\]\$d\.account`)
	reEndSessions  = regexp.MustCompile(`(?s)function End-Sessions.*GetOwnerSid.*logoff\.exe.*\$r\.sessions = End-Sessions \$c\.sid`)
	reStoresEnd    = regexp.MustCompile(`@\{ grant = [^\n]*end_sessions = \(\$c\.end_sessions -eq \$true\) \}`)

	// The switch's own code (what a fired task runs).
	reSwSweeps    = regexp.MustCompile(`Get-ScheduledTask -TaskPath '\\jitform\\'`)
	reSwDue       = regexp.MustCompile(`if \(\[int64\]\$d\.at -gt \$now\) \{ continue \}`)
	reSwGroupSID  = regexp.MustCompile(`-ne \$d\.group\) \{ continue \}`)
	reSwRemove    = regexp.MustCompile(`\$g\.Remove\('WinNT://' \+ \$d\.member\)`)
	reSwSessions  = regexp.MustCompile(`(?s)if \(\$d\.end_sessions -eq \$true\).*GetOwnerSid.*\$o\.Sid -eq \$d\.member.*logoff\.exe`)
	reSwUnregistr = regexp.MustCompile(`Unregister-ScheduledTask -TaskPath '\\jitform\\' -TaskName \$t\.TaskName`)
)

func readSwitchTraits(script string) switchTraits {
	t := switchTraits{
		registers:         reRegister.MatchString(script),
		beforeAdd:         reBeforeAdd.MatchString(script) && !reAfterAdd.MatchString(script),
		unregisters:       reUnregister.MatchString(script) && reUnregisterFn.MatchString(script),
		lists:             reList.MatchString(script),
		listsAccount:      reListAccount.MatchString(script),
		endSessions:       reEndSessions.MatchString(script),
		storesEndSessions: reStoresEnd.MatchString(script),
	}
	if m := reAction.FindStringSubmatch(script); m != nil {
		t.execute, t.argument = m[1], strings.TrimSpace(m[2])
	}
	if m := rePrincipal.FindStringSubmatch(script); m != nil {
		t.userID = m[1]
	}
	if t.argument == "$SwitchAction" {
		a, h := reSwitchAction.FindStringSubmatch(script), reHereString.FindStringSubmatch(script)
		if a != nil && h != nil {
			u16, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(h[1])
			if err == nil {
				t.switchArgs = a[1] + base64.StdEncoding.EncodeToString([]byte(u16))
			}
		}
	}
	return t
}

// actionArguments is the argument string a registration produces. When
// the script builds it from anything but the constant $SwitchAction, the
// fake evaluates the expression the only way it can: the data the
// expression names ($c.grant, $member, …) is spliced in where it is
// named, as PowerShell's string expansion and concatenation would.
func (t switchTraits) actionArguments(data map[string]string) string {
	if t.switchArgs != "" {
		return t.switchArgs
	}
	out := t.argument
	for k, v := range data {
		out = strings.ReplaceAll(out, k, v)
	}
	return out
}

// switchName is the apply script's Get-SwitchName.
func switchName(groupSID, memberSID string) string {
	h := sha256.Sum256([]byte(strings.ToUpper(groupSID) + "|" + strings.ToUpper(memberSID)))
	return hex.EncodeToString(h[:8])
}

// taskData is a switch task's description.
type taskData struct {
	Grant       string `json:"grant"`
	Group       string `json:"group"`
	Member      string `json:"member"`
	At          int64  `json:"at"`
	Right       string `json:"right,omitempty"`
	Account     string `json:"account,omitempty"`
	EndSessions bool   `json:"end_sessions"`
}

// registerSwitch is Register-Switch: Register-ScheduledTask -Force of the
// membership's task. Windows refuses what the cmdlets refuse: a due time
// that is not a number ([int64] cast), a missing action or principal.
//
// For a right's switch, groupSID is the right's name and storesRight says
// whether the script writes it into the description as the right.
func (h *Host) registerSwitch(st switchTraits, groupSID, memberSID string, at json.RawMessage, grant string, endSessions, storesRight bool) error {
	right := ""
	if storesRight {
		right = groupSID
	}
	return h.registerTask(st, taskData{Grant: grant, Group: groupSID, Member: memberSID, Right: right, EndSessions: endSessions && st.storesEndSessions}, at)
}

// registerTask registers the switch task of td (its At from at).
func (h *Host) registerTask(st switchTraits, td taskData, at json.RawMessage) error {
	groupSID, memberSID, grant := td.Group, td.Member, td.Grant
	if h.NoTaskScheduler {
		return fmt.Errorf("Register-ScheduledTask: The service is not available. (0x80070426)")
	}
	var secs int64
	if err := json.Unmarshal(at, &secs); err != nil || secs <= 0 {
		return fmt.Errorf(`Cannot convert value "%s" to type "System.Int64". Error: "Input string was not in a correct format."`, clipStr(string(at), 40))
	}
	if st.execute == "" || st.userID == "" {
		return fmt.Errorf("Register-ScheduledTask: the task has no action or no principal")
	}
	td.At = secs
	desc, err := json.Marshal(td)
	if err != nil {
		return err
	}
	name := switchName(groupSID, memberSID)
	data := map[string]string{"$c.grant": grant, "$grant": grant, "$c.sid": memberSID, "$member": memberSID, "$group": groupSID, "$gsid": groupSID}
	t := &Task{Path: `\jitform\`, Name: name, Execute: st.execute, Arguments: st.actionArguments(data),
		At: time.Unix(secs, 0).UTC(), UserID: st.userID, Description: string(desc), Registered: 1}
	for i, x := range h.Tasks {
		if x.Name == name {
			t.Registered = x.Registered + 1
			h.Tasks[i] = t
			return nil
		}
	}
	h.Tasks = append(h.Tasks, t)
	return nil
}

var (
	reSwDisable = regexp.MustCompile(`(?s)\$u = \[ADSI\]\('WinNT://\./' \+ \[string\]\$d\.account \+ ',user'\).*-ne \$d\.member\) \{ continue \}.*\$u\.psbase\.InvokeSet\('UserFlags', \(\[int\]\$u\.psbase\.InvokeGet\('UserFlags'\) -bor 0x2\)\)\s*
\s*\$u\.psbase\.CommitChanges\(\)`)
	reSwRotate = regexp.MustCompile(`\$u\.psbase\.Invoke\('SetPassword', \[Guid\]::NewGuid\(\)`)
)

// unregisterSwitch is Unregister-Switch: "deleted" or "none".
func (h *Host) unregisterSwitch(groupSID, memberSID string) (string, error) {
	if h.NoTaskScheduler {
		return "", fmt.Errorf("Get-ScheduledTask: The service is not available. (0x80070426)")
	}
	name := switchName(groupSID, memberSID)
	for i, x := range h.Tasks {
		if x.Name == name {
			h.Tasks = append(h.Tasks[:i], h.Tasks[i+1:]...)
			return "deleted", nil
		}
	}
	return "none", nil
}

// listSwitches is the read script's listing of \jitform\.
func (h *Host) listSwitches(st switchTraits) ([]map[string]any, string) {
	if h.NoTaskScheduler {
		return nil, "Get-ScheduledTask: The service is not available. (0x80070426)"
	}
	out := []map[string]any{}
	for _, t := range h.Tasks {
		s := map[string]any{"name": t.Path + t.Name, "trigger": t.At.Format("2006-01-02T15:04:05")}
		var d taskData
		if err := json.Unmarshal([]byte(t.Description), &d); err != nil {
			s["error"] = "the task's description is not jitform's: " + err.Error()
		} else {
			s["group"], s["member"], s["grant"], s["at"], s["right"] = d.Group, d.Member, d.Grant, d.At, d.Right
			if st.listsAccount {
				s["account"] = d.Account
			}
		}
		out = append(out, s)
	}
	return out, ""
}

// Now is the host's clock (Task Scheduler's): the real time until SetNow.
func (h *Host) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now()
}

func (h *Host) now() time.Time {
	if h.clock.IsZero() {
		return time.Now().UTC()
	}
	return h.clock
}

// SetNow sets the host's clock; every task whose trigger it reaches runs.
func (h *Host) SetNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = t.UTC()
	h.fire()
}

// Advance moves the host's clock by d; every task whose trigger it reaches
// runs.
func (h *Host) Advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = h.now().Add(d)
	h.fire()
}

// ScheduledTasks returns copies of the host's tasks.
func (h *Host) ScheduledTasks() []Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Task, 0, len(h.Tasks))
	for _, t := range h.Tasks {
		out = append(out, *t)
	}
	return out
}

// Firings returns the runs of task actions so far.
func (h *Host) Firings() []Firing {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Firing(nil), h.fired...)
}

// fire runs every task whose trigger the clock has reached (a missed
// trigger runs as soon as it can: StartWhenAvailable), in trigger order.
func (h *Host) fire() {
	now := h.now()
	for {
		var due *Task
		for _, t := range h.Tasks {
			if !t.dead && !t.At.After(now) && (due == nil || t.At.Before(due.At)) {
				due = t
			}
		}
		if due == nil {
			return
		}
		f := h.runSwitch(due, now)
		h.fired = append(h.fired, f)
		if f.Error != "" {
			// A task whose action cannot run stays, as on Windows (its
			// last run result says why); it does not run again.
			due.dead = true
		}
	}
}

// runSwitch runs a task's action as SYSTEM. The action must be
// powershell.exe -EncodedCommand with a script; what the script does is
// read from its code (the switch's traits).
func (h *Host) runSwitch(t *Task, now time.Time) Firing {
	f := Firing{Task: t.Path + t.Name, At: now}
	const enc = "-EncodedCommand "
	i := strings.Index(t.Arguments, enc)
	if !strings.EqualFold(t.Execute, "powershell.exe") || i < 0 || t.UserID != "S-1-5-18" {
		f.Error = fmt.Sprintf("the action %q %q (as %s) is not a PowerShell script run as SYSTEM", t.Execute, t.Arguments, t.UserID)
		return f
	}
	b, err := base64.StdEncoding.DecodeString(strings.Fields(t.Arguments[i+len(enc):])[0])
	if err != nil {
		f.Error = "the action's -EncodedCommand is not base64: " + err.Error()
		return f
	}
	code, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder().Bytes(b)
	if err != nil {
		f.Error = "the action's script is not UTF-16: " + err.Error()
		return f
	}
	sc := string(code)
	removesRights := reSwLsaRemove.MatchString(sc)
	disablesAccounts, rotatesAccounts := reSwDisable.MatchString(sc), reSwRotate.MatchString(sc)
	if !reSwSweeps.MatchString(sc) || !reSwRemove.MatchString(sc) {
		f.Error = "the action's script does not remove a switch's member"
		return f
	}
	checksDue, checksGroup, unregisters := reSwDue.MatchString(sc), reSwGroupSID.MatchString(sc), reSwUnregistr.MatchString(sc)
	endsSessions := reSwSessions.MatchString(sc)
	var keep []*Task
	for _, x := range append([]*Task(nil), h.Tasks...) {
		var d taskData
		if err := json.Unmarshal([]byte(x.Description), &d); err != nil {
			keep = append(keep, x)
			continue
		}
		if checksDue && time.Unix(d.At, 0).After(now) {
			keep = append(keep, x)
			continue
		}
		if d.Account != "" && reSID.MatchString(d.Member) {
			// An account's switch: a random password, the account
			// disabled, the task deleted.
			u := h.user(d.Account)
			if !disablesAccounts || u == nil || !strings.EqualFold(u.SID, d.Member) {
				keep = append(keep, x)
				continue
			}
			if rotatesAccounts {
				u.Password, u.PasswordSets = fmt.Sprintf("switch-%d-aA1!", now.UnixNano()), u.PasswordSets+1
			}
			u.Disabled = true
			f.Removed = append(f.Removed, "ACCOUNT|"+strings.ToUpper(d.Member))
			if !unregisters {
				keep = append(keep, x)
			}
			continue
		}
		if d.Right != "" && reSID.MatchString(d.Member) {
			// A right's switch: LsaRemoveAccountRights, then the task is
			// deleted; a script without the LSA removal leaves both.
			if !removesRights {
				keep = append(keep, x)
				continue
			}
			if code := h.lsaRemove(d.Right, d.Member); code == 0 {
				f.Removed = append(f.Removed, d.Right+"|"+strings.ToUpper(d.Member))
			} else if code != statusObjectNameNotFnd {
				keep = append(keep, x)
				continue
			}
			if !unregisters {
				keep = append(keep, x)
			}
			continue
		}
		if !reSID.MatchString(d.Group) || !reSID.MatchString(d.Member) {
			keep = append(keep, x)
			continue
		}
		g, err := h.bind(groupRef{SID: d.Group})
		if err != nil || (checksGroup && !strings.EqualFold(g.SID, d.Group)) {
			keep = append(keep, x)
			continue
		}
		if hr := h.adsiRemove(g, d.Member); hr == 0 {
			f.Removed = append(f.Removed, strings.ToUpper(d.Group)+"|"+strings.ToUpper(d.Member))
		}
		if d.EndSessions && endsSessions {
			f.SessionsEnded += h.endSessions(d.Member)
		}
		if !unregisters {
			keep = append(keep, x)
		}
	}
	h.Tasks = keep
	return f
}

// AddSession logs a user on: a console or RDP session with its processes.
func (h *Host) AddSession(sid, kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := 1
	for _, s := range h.Sessions {
		id = max(id, s.ID+1)
	}
	h.Sessions = append(h.Sessions, &Session{ID: id, SID: strings.ToUpper(sid), Kind: kind})
	return id
}

// SessionsOf returns the IDs of a user's sessions.
func (h *Host) SessionsOf(sid string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []int
	for _, s := range h.Sessions {
		if strings.EqualFold(s.SID, sid) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// endSessions is End-Sessions: every session above 0 with a process owned
// by sid is logged off (logoff.exe <id>).
func (h *Host) endSessions(sid string) int {
	var keep []*Session
	n := 0
	for _, s := range h.Sessions {
		if s.ID > 0 && strings.EqualFold(s.SID, sid) {
			n++
			continue
		}
		keep = append(keep, s)
	}
	h.Sessions = keep
	return n
}
