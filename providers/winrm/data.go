package winrm

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/unicode"
)

// The scripts are constants. Data never becomes code: the command line is a
// fixed bootstrap that reads stdin, whose first line is the script (base64)
// and whose rest is the JSON document the script takes as its one parameter.
// Whatever the data, the command line and the script text are the same
// bytes; only stdin grows, so cmd.exe's 8,191-character command-line cap
// (which silently truncates and still exits 0) never applies to data.
var (
	//go:embed scripts/bootstrap.ps1
	bootstrapPS string
	//go:embed scripts/read.ps1
	readPS string
	//go:embed scripts/apply.ps1
	applyPS string
	//go:embed scripts/switch.ps1
	switchPS string
	//go:embed scripts/lsa.cs
	lsaCS string
	//go:embed scripts/lsa_switch.cs
	lsaSwitchCS string

	// SwitchCode is the dead-man's switch every scheduled task runs
	// (scripts/switch.ps1 without its comment lines, which only cost
	// length in the task's arguments).
	SwitchCode = stripComments(withLSACode(switchPS, lsaSwitchCS))
	// SwitchArguments is the argument string of every switch task's action
	// (powershell.exe): the same bytes for every task, whatever its data.
	SwitchArguments = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + utf16Base64(SwitchCode)
	// ApplyScript is scripts/apply.ps1 with SwitchCode in its here-string.
	ApplyScript = withSwitch(withLSA(applyPS), SwitchCode)
	// ReadScript is scripts/read.ps1 with the LSA code (scripts/lsa.cs).
	ReadScript = withLSA(readPS)
)

// withLSA puts the C# of scripts/lsa.cs (the P/Invoke declarations of the
// LSA calls for user rights) into a script's single-quoted string at
// #LSA#: fixed code, compiled by Add-Type on the host; the rights and SIDs
// it works on are data, passed to its methods as arguments.
func withLSA(ps string) string { return withLSACode(ps, lsaCS) }

// withLSACode is withLSA with the given C# (the switch carries a smaller
// class: only the removal, which keeps its task arguments short).
func withLSACode(ps, code string) string {
	const hole = "#LSA#"
	code = strings.TrimSpace(code)
	if strings.Count(ps, hole) != 1 || strings.ContainsAny(code, "'#") {
		panic("winrm: the LSA code cannot go into the script's string")
	}
	return strings.Replace(ps, hole, code, 1)
}

// SwitchGrace is added to a grant's window end for its switch's trigger:
// jitform's own removal, due at the window end, goes first when it runs.
// It must stay within a minute of config.LDAPTTLGrace: the planner
// rewrites a membership whose server-side expiry is off by more.
const SwitchGrace = 60 * time.Second

// SwitchTaskPath is the Task Scheduler folder of jitform's switches.
const SwitchTaskPath = `\jitform\`

// SwitchTaskName is the name of the switch of one membership, as the apply
// script computes it: the first 8 bytes of SHA-256("GROUPSID|MEMBERSID"),
// hex. One switch per membership, so a later grant's add replaces it.
func SwitchTaskName(groupSID, memberSID string) string {
	h := sha256.Sum256([]byte(strings.ToUpper(groupSID) + "|" + strings.ToUpper(memberSID)))
	return hex.EncodeToString(h[:8])
}

func stripComments(ps string) string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(ps, "\r\n", "\n"), "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func utf16Base64(s string) string {
	u16, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(s)
	if err != nil {
		panic(err) // the scripts are constant ASCII
	}
	return base64.StdEncoding.EncodeToString([]byte(u16))
}

// withSwitch puts the switch's code into the apply script's single-quoted
// here-string, which PowerShell takes verbatim (nothing in it is expanded).
func withSwitch(apply, code string) string {
	const hole = "#SWITCH#"
	if strings.Count(apply, hole) != 1 || strings.Contains(code, "\n'@") || strings.HasPrefix(code, "'@") {
		panic("winrm: the switch script cannot go into the apply script's here-string")
	}
	return strings.Replace(apply, hole, code, 1)
}

// CommandLine is the one command line jitform ever sends.
var CommandLine = encodeCommand(bootstrapPS)

func encodeCommand(ps string) string {
	return "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + utf16Base64(ps)
}

// GroupRef names a local group: by SID (preferred: survives localisation)
// or by name.
type GroupRef struct {
	Key  string `json:"key"`
	SID  string `json:"sid,omitempty"`
	Name string `json:"name,omitempty"`
}

// ReadRequest is the read script's input.
type ReadRequest struct {
	Op         string     `json:"op"` // "read"
	Groups     []GroupRef `json:"groups"`
	Principals []string   `json:"principals"`
	// Rights: user rights whose holders to read (LSA).
	Rights []RightRef `json:"rights"`
	// Accounts: local users whose state to read (ADSI WinNT user flags).
	Accounts []AccountRef `json:"accounts"`
}

// RightRef names a user right (SeBackupPrivilege, SeRemoteInteractiveLogonRight).
type RightRef struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// RightState is what the read script reports for one right, in request
// order: its holders by SID (an orphaned SID is named by itself).
type RightState struct {
	Key     string        `json:"key"`
	Holders list[Account] `json:"holders,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// AccountRef names a local user account.
type AccountRef struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// UserState is what the read script reports for one local user.
type UserState struct {
	Key     string `json:"key"`
	Exists  bool   `json:"exists"`
	Enabled bool   `json:"enabled"`
	Error   string `json:"error,omitempty"`
}

// AccountSet is one account change for the apply script: enable or
// disable, and the new password when one is set (data on stdin, never
// echoed back).
type AccountSet struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	Enable   bool   `json:"enable"`
	Password string `json:"password,omitempty"`
	// SwitchAt (enable): when the dead-man's switch disables the account
	// (and sets a random password), Unix seconds; zero: no switch, and any
	// switch of the account is deleted. Account is the user's name as the
	// switch binds it; Grant is recorded in the switch.
	SwitchAt int64  `json:"switch_at,omitempty"`
	Account  string `json:"account,omitempty"`
	Grant    string `json:"grant,omitempty"`
}

// Account is a SID and the name it translates to (the SID itself when it
// is orphaned).
type Account struct {
	SID  string `json:"sid"`
	Name string `json:"name"`
}

// GroupState is what the read script reports for one group, in request
// order; Key echoes the request's.
type GroupState struct {
	Key     string        `json:"key"`
	SID     string        `json:"sid,omitempty"`
	Name    string        `json:"name,omitempty"`
	Members list[Account] `json:"members,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Resolved is what the read script reports for one principal, in request
// order; Principal echoes the request's, exactly (principals that differ
// only in case are two answers).
type Resolved struct {
	Principal string `json:"principal"`
	SID       string `json:"sid,omitempty"`
	Name      string `json:"name,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ReadResponse is the read script's output.
type ReadResponse struct {
	// DomainRole is Win32_ComputerSystem.DomainRole: 4 and 5 are domain
	// controllers; -1 means the host could not tell.
	DomainRole *int             `json:"domain_role"`
	Groups     list[GroupState] `json:"groups"`
	Principals list[Resolved]   `json:"principals"`
	// Switches are jitform's scheduled tasks on the host; SwitchesError
	// says why they could not be listed.
	Switches      list[SwitchState] `json:"switches"`
	SwitchesError string            `json:"switches_error,omitempty"`
	Rights        list[RightState]  `json:"rights"`
	Accounts      list[UserState]   `json:"accounts"`
}

// SwitchState is one dead-man's switch as the read script lists it: the
// task's path and name, its trigger as Task Scheduler holds it, and the
// data of its Description.
type SwitchState struct {
	Name    string `json:"name"`
	Trigger string `json:"trigger,omitempty"`
	Group   string `json:"group,omitempty"`
	Right   string `json:"right,omitempty"`   // a right's switch: the right it removes Member from
	Account string `json:"account,omitempty"` // an account's switch: the local user it disables (Member is its SID)
	Member  string `json:"member,omitempty"`
	Grant   string `json:"grant,omitempty"`
	At      int64  `json:"at,omitempty"` // Unix seconds, UTC
	Error   string `json:"error,omitempty"`
}

// Change is one membership change for the apply script.
type Change struct {
	Group GroupRef `json:"group"`
	// Right, when set, makes this a change of a user right's holders
	// (LSA) instead of a group's members; Group is then empty.
	Right  string `json:"right,omitempty"`
	Action string `json:"action"` // "add" or "remove"
	SID    string `json:"sid"`
	// SwitchAt (add): when the dead-man's switch removes the member, Unix
	// seconds; zero: no switch (a declared member), and any switch of the
	// membership is deleted. Grant is recorded in the switch.
	SwitchAt int64  `json:"switch_at,omitempty"`
	Grant    string `json:"grant,omitempty"`
	// EndSessions: on a remove, log off the member's sessions on the
	// host; on an add with a switch, the switch does so when it fires.
	EndSessions bool `json:"end_sessions,omitempty"`
}

// ApplyRequest is the apply script's input.
type ApplyRequest struct {
	Op string `json:"op"` // "apply"
	// AllowDomainController lets the script change groups on a domain
	// controller, where they are the domain's (allow_domain_controller).
	AllowDomainController bool     `json:"allow_domain_controller"`
	Changes               []Change `json:"changes"`
	// Accounts: local users to enable or disable.
	Accounts []AccountSet `json:"accounts"`
}

// Result is one change's outcome, in request order.
type Result struct {
	Status string `json:"status"` // done, already, failed, unknown
	Error  string `json:"error,omitempty"`
	// Switch: "registered", "deleted" or "none" (no switch was there).
	Switch      string `json:"switch,omitempty"`
	SwitchError string `json:"switch_error,omitempty"`
	// Sessions: how many sessions were logged off (end_sessions).
	Sessions      *int   `json:"sessions,omitempty"`
	SessionsError string `json:"sessions_error,omitempty"`
}

// ApplyResponse is the apply script's output.
type ApplyResponse struct {
	Results  list[Result] `json:"results"`
	Accounts list[Result] `json:"accounts"`
}

// EncodeStdin builds the stdin of one run: the script, then the data.
func EncodeStdin(script string, data any) (string, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	return base64.StdEncoding.EncodeToString([]byte(script)) + "\n" + asciiJSON(b), nil
}

// asciiJSON writes every character above 0x7E of a JSON document as a
// \uXXXX escape (UTF-16, surrogate pairs for the rest). The console that
// reads stdin on Windows decodes it with its code page (OEM 437, 850, …),
// which turns UTF-8 bytes into other characters; ASCII passes unchanged.
// Outside strings JSON is ASCII, so escaping everywhere is escaping in
// strings.
func asciiJSON(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, r := range string(b) {
		if r < 0x7F {
			sb.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&sb, `\u%04x`, u)
		}
	}
	return sb.String()
}

// DecodeStdin splits a run's stdin into script and data (the test server's
// side of EncodeStdin).
func DecodeStdin(stdin string) (script string, data []byte, err error) {
	head, rest, ok := strings.Cut(stdin, "\n")
	if !ok {
		return "", nil, fmt.Errorf("stdin has no script line")
	}
	s, err := base64.StdEncoding.DecodeString(strings.TrimSpace(head))
	if err != nil {
		return "", nil, fmt.Errorf("script line: %w", err)
	}
	return string(s), []byte(rest), nil
}

// list decodes a JSON array, or a single object where PowerShell's
// ConvertTo-Json unwraps a one-element array.
type list[T any] []T

func (l *list[T]) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*l = nil
		return nil
	}
	if strings.HasPrefix(s, "[") {
		var xs []T
		if err := json.Unmarshal(b, &xs); err != nil {
			return err
		}
		*l = xs
		return nil
	}
	var x T
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*l = []T{x}
	return nil
}
