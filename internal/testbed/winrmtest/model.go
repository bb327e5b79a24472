package winrmtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// The fake cannot run PowerShell. It models what Windows does for each
// construct the scripts use, and reads from the script text which
// constructs a script uses: the traits below. Each trait is a regular
// expression over the code (the bootstrap and the script), never a marker a
// script could claim without doing it, and each is documented with the
// Windows behaviour it switches on. A script that changes what it does
// changes its traits, and the fake answers the way Windows would.
type traits struct {
	// Bootstrap.
	sentinelBegin, sentinelEnd string // the result is wrapped in these markers
	escapesNonASCII            bool   // the result's non-ASCII characters are written as \uXXXX
	silencesProgress           bool   // $ProgressPreference = 'SilentlyContinue'

	// Read and apply.
	keyedByName      bool // results go into a PowerShell hashtable indexed by the principal's name
	checksGroupSID   bool // the bound group's objectSid is compared with the requested SID
	checksDomainRole bool // Win32_ComputerSystem.DomainRole is read

	// Apply.
	isMember        bool     // membership is tested with ADSI IsMember (a path comparison)
	unwrapsCOM      bool     // MethodInvocationException is unwrapped to the COMException
	alreadyOnAdd    []string // HRESULTs ("0x80070562") the script classifies as already, on add
	alreadyOnRemove []string // … on remove
	rereadsMembers  bool     // members are re-read (Invoke('Members')) to verify a change

	// Scheduled tasks and sessions (tasks.go).
	sw switchTraits

	// User rights and local users (lsa.go).
	rights rightTraits
}

var (
	reSentinel      = regexp.MustCompile(`'(<<<[A-Za-z0-9-]+>>>)'\s*\+\s*\$r\s*\+\s*'(<<<[A-Za-z0-9-]+>>>)'`)
	reEscape        = regexp.MustCompile(`\[regex\]::Replace\(\$r,\s*'\[\^\\x00-\\x3b\\x3d\\x3f-\\x7e\]',\s*\{[^}]*'\\u\{0:x4\}'`)
	reProgress      = regexp.MustCompile(`(?i)\$ProgressPreference\s*=\s*'SilentlyContinue'`)
	reKeyed         = regexp.MustCompile(`\$principals\[\$p\]\s*=`)
	reGroupSID      = regexp.MustCompile(`Get-Sid \$grp\.psbase\.NativeObject[^\n]*\n[^\n]*-ne\s+\$g\.sid`)
	reDomainRole    = regexp.MustCompile(`Win32_ComputerSystem\)?\.DomainRole`)
	reIsMember      = regexp.MustCompile(`\.IsMember\(`)
	reCOM           = regexp.MustCompile(`-is\s+\[System\.Runtime\.InteropServices\.COMException\]`)
	reAlreadyAdd    = regexp.MustCompile(`\$AlreadyOnAdd\s*=\s*@\(([^)]*)\)`)
	reAlreadyRemove = regexp.MustCompile(`\$AlreadyOnRemove\s*=\s*@\(([^)]*)\)`)
	reHResult       = regexp.MustCompile(`'(0x[0-9A-Fa-f]{8})'`)
	reReread        = regexp.MustCompile(`Invoke\('Members'\)`)
	reSID           = regexp.MustCompile(`(?i)^S-1-[0-9-]+$`)
)

func readTraits(bootstrap, script string) traits {
	var t traits
	if m := reSentinel.FindStringSubmatch(bootstrap); m != nil {
		t.sentinelBegin, t.sentinelEnd = m[1], m[2]
	}
	t.escapesNonASCII = reEscape.MatchString(bootstrap)
	t.silencesProgress = reProgress.MatchString(bootstrap) || reProgress.MatchString(script)
	t.keyedByName = reKeyed.MatchString(script)
	t.checksGroupSID = reGroupSID.MatchString(script)
	t.checksDomainRole = reDomainRole.MatchString(script)
	t.isMember = reIsMember.MatchString(script)
	t.unwrapsCOM = reCOM.MatchString(script)
	if m := reAlreadyAdd.FindStringSubmatch(script); m != nil {
		for _, h := range reHResult.FindAllStringSubmatch(m[1], -1) {
			t.alreadyOnAdd = append(t.alreadyOnAdd, strings.ToUpper(h[1][2:]))
		}
	}
	if m := reAlreadyRemove.FindStringSubmatch(script); m != nil {
		for _, h := range reHResult.FindAllStringSubmatch(m[1], -1) {
			t.alreadyOnRemove = append(t.alreadyOnRemove, strings.ToUpper(h[1][2:]))
		}
	}
	t.rereadsMembers = reReread.MatchString(script)
	t.sw = readSwitchTraits(script)
	// What the apply script itself does, not the switch it carries in its
	// here-string (which has LSA and ADSI code of its own).
	t.rights = readRightTraits(reHereString.ReplaceAllString(script, "$$SwitchScript = ''"))
	return t
}

// HRESULTs of the WinNT provider's IADsGroup::Add and ::Remove (Win32
// errors as HRESULT_FROM_WIN32), and their Windows messages.
const (
	hrMemberInAlias    = 0x80070562 // ERROR_MEMBER_IN_ALIAS (1378)
	hrMemberNotInAlias = 0x80070561 // ERROR_MEMBER_NOT_IN_ALIAS (1377)
	hrNoSuchMember     = 0x8007056B // ERROR_NO_SUCH_MEMBER (1387)
	hrInvalidMember    = 0x8007056C // ERROR_INVALID_MEMBER (1388)
	hrObjectExists     = 0x80071392 // ERROR_OBJECT_ALREADY_EXISTS (5010)
	// What $_.Exception.HResult is when a script does not unwrap: the
	// MethodInvocationException's own code, never the COM one.
	hrMethodInvocation = 0x80131501
)

var hrMessage = map[uint32]string{
	hrMemberInAlias:    "The specified account name is already a member of the group.",
	hrMemberNotInAlias: "The specified account name is not a member of the group.",
	hrNoSuchMember:     "A new member could not be added to or removed from the local group because the member does not exist.",
	hrInvalidMember:    "A new member could not be added to a local group because the member has the wrong account type.",
	hrObjectExists:     "The object already exists.",
}

// scriptError is a terminating error of the whole script: powershell.exe
// exits 1 and writes it to stderr as CLIXML.
type scriptError struct{ msg, id string }

func (e scriptError) Error() string { return e.msg }

// errKilled: the PowerShell process died during the run (KillAfterWrites).
var errKilled = fmt.Errorf("the process was killed")

// Execute runs one command line with its stdin against the host model and
// returns what powershell.exe would write to stdout and stderr, and its exit
// code.
func (h *Host) Execute(line, stdin string) (stdout, stderr []byte, code int) {
	run := Run{CommandLine: line}
	dec, err := DecodeCommandLine(line)
	if err != nil {
		return nil, []byte("'" + line + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"), 1
	}
	run.Decoded = dec
	h.mu.Lock()
	utf8Console, autorun := h.UTF8Console, h.AutoRun
	h.mu.Unlock()
	// The console decodes stdin with its code page (OEM 437 on an en-US
	// host): bytes above 0x7F become other characters.
	if !utf8Console {
		stdin, _ = charmap.CodePage437.NewDecoder().String(stdin)
	}
	out, serr := h.executeDecoded(&run, dec, stdin)
	run.Output = out
	h.mu.Lock()
	h.Runs = append(h.Runs, run)
	h.mu.Unlock()
	t := readTraits(dec, run.Script)
	if serr == errKilled {
		return []byte(autorun), nil, 1
	}
	if serr != nil {
		return []byte(autorun), clixml(serr, t), 1
	}
	if t.escapesNonASCII {
		out = escapeNonASCII(out)
	} else if !utf8Console {
		// The console encodes stdout with its code page: what it cannot
		// represent becomes '?', the rest is not UTF-8.
		out = toCodePage(out)
	}
	return []byte(autorun + t.sentinelBegin + out + t.sentinelEnd), nil, 0
}

func (h *Host) executeDecoded(run *Run, dec, stdin string) (string, error) {
	head, rest, ok := strings.Cut(stdin, "\n")
	if !ok {
		return "", scriptError{"You cannot call a method on a null-valued expression.", "InvokeMethodOnNull"}
	}
	sc, err := base64.StdEncoding.DecodeString(strings.TrimSpace(head))
	if err != nil {
		return "", scriptError{`Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 string."`, "FormatException"}
	}
	run.Script, run.Data = string(sc), rest
	h.mu.Lock()
	clm := h.ConstrainedLanguage
	h.mu.Unlock()
	if clm {
		return "", scriptError{"Cannot create type. Only core types are supported in this language mode.", "CannotCreateTypeConstrainedLanguage"}
	}
	t := readTraits(dec, run.Script)
	var op struct {
		Op string `json:"op"`
	}
	if err := json.Unmarshal([]byte(rest), &op); err != nil {
		return "", scriptError{"Invalid JSON primitive: " + clipStr(rest, 20) + ".", "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand"}
	}
	var out any
	switch op.Op {
	case "read":
		out, err = h.read(t, []byte(rest))
	case "apply":
		out, err = h.apply(t, []byte(rest))
	default:
		return "", scriptError{"The property 'changes' cannot be found on this object.", "PropertyNotFoundStrict"}
	}
	if err == errKilled {
		return "", err
	}
	if err != nil {
		return "", scriptError{err.Error(), "RuntimeException"}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return "", scriptError{err.Error(), "RuntimeException"}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func clipStr(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// toCodePage encodes s in code page 437 as the console does: a character
// the code page lacks becomes '?'.
func toCodePage(s string) string {
	var b strings.Builder
	for _, r := range s {
		if c, ok := charmap.CodePage437.EncodeRune(r); ok {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// escapeNonASCII writes every character above 0x7E, and < and >, as
// \uXXXX (UTF-16), as the bootstrap's [regex]::Replace does.
func escapeNonASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x7F && r != '<' && r != '>' {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// clixml renders a terminating error as powershell.exe writes it to a
// redirected stderr under -EncodedCommand: a CLIXML document, with the
// "Preparing modules for first use." progress record first unless the
// script silenced progress.
func clixml(err error, t traits) []byte {
	var b strings.Builder
	b.WriteString("#< CLIXML\r\n")
	b.WriteString(`<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">`)
	if !t.silencesProgress {
		for i := 0; i < 2; i++ {
			fmt.Fprintf(&b, `<Obj S="progress" RefId="%d"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>`, i)
		}
	}
	id := "RuntimeException"
	if se, ok := err.(scriptError); ok {
		id = se.id
	}
	lines := []string{
		err.Error(),
		"At line:1 char:247",
		"+ ... ase64String($i.Substring(0,$n).Trim())));& $s $i.Substring($n+1)",
		"+                                               ~~~~~~~~~~~~~~~~~~~~~~~~",
		"    + CategoryInfo          : NotSpecified: (:) [], " + strings.Split(id, ",")[0],
		"    + FullyQualifiedErrorId : " + id,
		" ",
	}
	for _, l := range lines {
		b.WriteString(`<S S="Error">`)
		b.WriteString(clixmlEscape(l + "\r\n"))
		b.WriteString(`</S>`)
	}
	b.WriteString(`</Objs>`)
	return []byte(b.String())
}

// clixmlEscape escapes as PowerShell's serializer does: XML entities, and
// control characters as _xHHHH_.
func clixmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r < 0x20 || r == '_':
			if r == '_' {
				b.WriteString("_x005F_")
			} else {
				fmt.Fprintf(&b, "_x%04X_", r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type groupRef struct {
	Key  string `json:"key"`
	SID  string `json:"sid"`
	Name string `json:"name"`
}

// accountName translates a SID as NTAccount.Translate does: a local
// group's SID to BUILTIN\name or HOST\name, an account's to DOMAIN\name.
func (h *Host) accountName(sid string) (string, bool) {
	for _, g := range h.Groups {
		if strings.EqualFold(g.SID, sid) {
			if strings.HasPrefix(g.SID, "S-1-5-32-") {
				return `BUILTIN\` + g.Name, true
			}
			return strings.ToUpper(hostLabel(h.Name)) + `\` + g.Name, true
		}
	}
	for s, n := range h.Accounts {
		if strings.EqualFold(s, sid) {
			return n, true
		}
	}
	return "", false
}

// name is what the scripts' Get-Name returns: the account name, or the SID
// itself when it is orphaned.
func (h *Host) name(sid string) string {
	if n, ok := h.accountName(sid); ok {
		return n
	}
	return sid
}

// bind opens a group as the scripts do: by name, after translating a SID
// to its name and dropping the domain part. ADSI binds names
// case-insensitively; the group it finds may not have the SID asked for.
func (h *Host) bind(g groupRef) (*Group, error) {
	name := g.Name
	if g.SID != "" {
		name = h.name(g.SID)
		if i := strings.LastIndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		}
	}
	if strings.ContainsAny(name, `,/\`) {
		return nil, fmt.Errorf("group name has characters ADSI paths cannot carry")
	}
	for _, x := range h.Groups {
		if strings.EqualFold(x.Name, name) {
			return x, nil
		}
	}
	return nil, fmt.Errorf(`Exception calling "Name" with "0" argument(s): "The group name could not be found."`)
}

// translate resolves a principal as NTAccount.Translate does:
// case-insensitively, DOMAIN\name, a bare name or a UPN.
func (h *Host) translate(p string) (string, error) {
	if reSID.MatchString(p) {
		return strings.ToUpper(p), nil
	}
	want := strings.ToLower(p)
	if user, dom, ok := strings.Cut(p, "@"); ok { // UPN
		want = strings.ToLower(strings.Split(dom, ".")[0] + `\` + user)
	}
	for sid, n := range h.Accounts {
		if strings.ToLower(n) == want || (!strings.Contains(p, `\`) && strings.HasSuffix(strings.ToLower(n), `\`+want)) {
			return sid, nil
		}
	}
	return "", fmt.Errorf(`Exception calling "Translate" with "1" argument(s): "Some or all identity references could not be translated."`)
}

func (h *Host) domainRole() int {
	if h.DomainController {
		return 5 // primary domain controller
	}
	return 3 // member server
}

// hashtable is a PowerShell @{}: keys compare case-insensitively, the first
// spelling of a key stays, the last value wins; it serialises in insertion
// order.
type hashtable struct {
	keys []string
	vals map[string]any
}

func (t *hashtable) set(k string, v any) {
	if t.vals == nil {
		t.vals = map[string]any{}
	}
	for _, x := range t.keys {
		if strings.EqualFold(x, k) {
			t.vals[x] = v
			return
		}
	}
	t.keys = append(t.keys, k)
	t.vals[k] = v
}

func (t *hashtable) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range t.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(t.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// unwrap renders an array as ConvertTo-Json does for a one-element array
// inside a hashtable built with +=: PowerShell unwraps it.
func unwrap[T any](xs []T) any {
	if len(xs) == 1 {
		return xs[0]
	}
	return xs
}

func (h *Host) read(t traits, data []byte) (any, error) {
	var req struct {
		Groups     []groupRef `json:"groups"`
		Principals []string   `json:"principals"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var groups []map[string]any
	var legacyGroups hashtable
	for _, g := range req.Groups {
		var st map[string]any
		x, err := h.bind(g)
		switch {
		case err != nil:
			st = map[string]any{"error": err.Error()}
		case t.checksGroupSID && g.SID != "" && !strings.EqualFold(x.SID, g.SID):
			st = map[string]any{"error": fmt.Sprintf("the group bound by name %q has SID %s, not %s", x.Name, x.SID, strings.ToUpper(g.SID))}
		default:
			ms := []map[string]string{}
			for _, m := range x.Members {
				ms = append(ms, map[string]string{"sid": m, "name": h.name(m)})
			}
			st = map[string]any{"sid": x.SID, "name": x.Name, "members": unwrap(ms)}
		}
		if t.keyedByName {
			legacyGroups.set(g.Key, st)
			continue
		}
		st["key"] = g.Key
		groups = append(groups, st)
	}
	var principals []map[string]string
	var legacyPrincipals hashtable
	for _, p := range req.Principals {
		var r map[string]string
		if sid, err := h.translate(p); err != nil {
			r = map[string]string{"error": err.Error()}
		} else {
			r = map[string]string{"sid": sid, "name": h.name(sid)}
		}
		if t.keyedByName {
			legacyPrincipals.set(p, r)
			continue
		}
		r["principal"] = p
		principals = append(principals, r)
	}
	if t.keyedByName {
		return map[string]any{"groups": &legacyGroups, "principals": &legacyPrincipals}, nil
	}
	out := map[string]any{"groups": unwrap(groups), "principals": unwrap(principals)}
	if groups == nil {
		out["groups"] = []any{}
	}
	if principals == nil {
		out["principals"] = []any{}
	}
	if t.checksDomainRole {
		out["domain_role"] = h.domainRole()
	}
	if rs, ok := h.readRights(t.rights, data); ok {
		out["rights"] = unwrap(rs)
	}
	if us, ok := h.readUsers(t.rights, data); ok {
		out["accounts"] = unwrap(us)
	}
	if t.sw.lists {
		sws, serr := h.listSwitches(t.sw)
		out["switches"], out["switches_error"] = unwrap(sws), serr
		if len(sws) == 0 {
			out["switches"] = []any{}
		}
	}
	return out, nil
}

// member reports whether sid is a direct member of g.
func member(g *Group, sid string) int {
	for i, m := range g.Members {
		if strings.EqualFold(m, sid) {
			return i
		}
	}
	return -1
}

// isMemberPath is ADSI IsMember: it compares the given path with each
// member's ADsPath as strings. A member that resolves has the path
// WinNT://DOMAIN/name; only an orphaned SID has WinNT://S-1-….
func (h *Host) isMemberPath(g *Group, path string) bool {
	for _, m := range g.Members {
		p := "WinNT://" + m
		if n, ok := h.accountName(m); ok {
			p = "WinNT://" + strings.ReplaceAll(n, `\`, "/")
		}
		if strings.EqualFold(p, path) {
			return true
		}
	}
	return false
}

// adsiAdd is IADsGroup::Add("WinNT://<SID>"): NetLocalGroupAddMembers by
// SID. It returns the HRESULT.
func (h *Host) adsiAdd(g *Group, sid string) uint32 {
	if member(g, sid) >= 0 {
		return hrMemberInAlias
	}
	if _, ok := h.Accounts[strings.ToUpper(sid)]; !ok {
		for _, x := range h.Groups {
			if strings.EqualFold(x.SID, sid) {
				return hrInvalidMember // a local group cannot be a member of a local group
			}
		}
		if !strings.HasPrefix(strings.ToUpper(sid), "S-1-5-32-") {
			return hrNoSuchMember
		}
	}
	if !h.IneffectiveWrites {
		g.Members = append(g.Members, strings.ToUpper(sid))
	}
	return 0
}

// adsiRemove is IADsGroup::Remove("WinNT://<SID>").
func (h *Host) adsiRemove(g *Group, sid string) uint32 {
	i := member(g, sid)
	if i < 0 {
		return hrMemberNotInAlias
	}
	if !h.IneffectiveWrites {
		g.Members = append(g.Members[:i], g.Members[i+1:]...)
	}
	return 0
}

func methodError(method string, hr uint32) string {
	msg, ok := hrMessage[hr]
	if !ok {
		msg = fmt.Sprintf("Unknown error (0x%08x)", hr)
	}
	return fmt.Sprintf("Exception calling %q with \"1\" argument(s): %q", method, msg)
}

func contains(xs []string, hr uint32) bool {
	for _, x := range xs {
		if strings.EqualFold(x, fmt.Sprintf("%08X", hr)) {
			return true
		}
	}
	return false
}

func (h *Host) apply(t traits, data []byte) (any, error) {
	var req struct {
		AllowDC  bool         `json:"allow_domain_controller"`
		Accounts []userChange `json:"accounts"`
		Changes  []struct {
			Right       string          `json:"right"`
			Group       groupRef        `json:"group"`
			Action      string          `json:"action"`
			SID         string          `json:"sid"`
			SwitchAt    json.RawMessage `json:"switch_at"`
			Grant       string          `json:"grant"`
			EndSessions bool            `json:"end_sessions"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	results := []map[string]any{}
	fail := func(msg string) { results = append(results, map[string]any{"status": "failed", "error": msg}) }
	writes := 0
	killed := func() bool {
		writes++
		return h.KillAfterWrites > 0 && writes == h.KillAfterWrites
	}
	for _, c := range req.Changes {
		if c.Right != "" {
			st, err := h.applyRight(t, rightChange{Right: c.Right, Action: c.Action, SID: c.SID, SwitchAt: c.SwitchAt, Grant: c.Grant}, req.AllowDC, killed)
			if err != nil {
				return nil, err
			}
			results = append(results, st)
			continue
		}
		if !reSID.MatchString(c.SID) {
			fail("not a SID")
			continue
		}
		if t.checksDomainRole && h.DomainController && !req.AllowDC {
			fail("this host is a domain controller: its groups are the domain's; refused without allow_domain_controller")
			continue
		}
		g, err := h.bind(c.Group)
		if err != nil {
			fail(err.Error())
			continue
		}
		if t.checksGroupSID && c.Group.SID != "" && !strings.EqualFold(g.SID, c.Group.SID) {
			fail(fmt.Sprintf("the group bound by name %q has SID %s, not %s", g.Name, g.SID, strings.ToUpper(c.Group.SID)))
			continue
		}
		add := c.Action == "add"
		method := "Remove"
		if add {
			method = "Add"
		}
		if t.isMember {
			// The script of old: IsMember first, then Add or Remove.
			is := h.isMemberPath(g, "WinNT://"+c.SID)
			var hr uint32
			switch {
			case add && is, !add && !is:
				results = append(results, map[string]any{"status": "already"})
				continue
			case add:
				hr = h.adsiAdd(g, c.SID)
			default:
				hr = h.adsiRemove(g, c.SID)
			}
			if hr != 0 {
				fail(methodError(method, hr))
			} else {
				results = append(results, map[string]any{"status": "done"})
			}
			continue
		}
		// PowerShell's "if ($c.switch_at)": present and not 0.
		wantSwitch := add && t.sw.registers && len(c.SwitchAt) > 0 && string(c.SwitchAt) != "null" && string(c.SwitchAt) != "0" && string(c.SwitchAt) != `""`
		registered := false
		register := func() error {
			if err := h.registerSwitch(t.sw, g.SID, strings.ToUpper(c.SID), c.SwitchAt, c.Grant, c.EndSessions, false); err != nil {
				return fmt.Errorf("the dead-man's switch could not be registered, so the member was not added: %v", err)
			}
			registered = true
			return nil
		}
		if wantSwitch && t.sw.beforeAdd {
			if err := register(); err != nil {
				fail(err.Error())
				continue
			}
		}
		var hr uint32
		if add {
			hr = h.adsiAdd(g, c.SID)
		} else {
			hr = h.adsiRemove(g, c.SID)
		}
		if killed() {
			return nil, errKilled
		}
		if wantSwitch && !t.sw.beforeAdd {
			if err := register(); err != nil {
				fail(err.Error())
				continue
			}
		}
		st := map[string]any{"status": "done"}
		if hr != 0 {
			code := hr
			if !t.unwrapsCOM {
				code = hrMethodInvocation
			}
			known := t.alreadyOnRemove
			if add {
				known = t.alreadyOnAdd
			}
			if contains(known, code) {
				st["status"] = "already"
			} else {
				st = map[string]any{"status": "failed", "error": fmt.Sprintf("%s (0x%08X)", methodError(method, hr), code)}
			}
		}
		if t.rereadsMembers && st["status"] != "failed" {
			if present := member(g, c.SID) >= 0; present != add {
				st = map[string]any{"status": "failed", "error": fmt.Sprintf("%s reported %s, but the group's members read again say otherwise", method, st["status"])}
			}
		}
		switch {
		case st["status"] == "failed" && registered:
			// The member is not there: the script deletes the switch.
			if r, err := h.unregisterSwitch(g.SID, c.SID); err != nil {
				st["switch_error"] = err.Error()
			} else {
				st["switch"] = r
			}
		case st["status"] == "failed":
		case registered:
			st["switch"] = "registered"
		case t.sw.unregisters:
			if r, err := h.unregisterSwitch(g.SID, c.SID); err != nil {
				st["switch_error"] = err.Error()
			} else {
				st["switch"] = r
			}
		}
		if st["status"] != "failed" && !add && c.EndSessions && t.sw.endSessions {
			st["sessions"] = h.endSessions(c.SID)
		}
		results = append(results, st)
	}
	accounts := []map[string]any{}
	for _, a := range req.Accounts {
		st, err := h.applyUser(t, a, req.AllowDC, killed)
		if err != nil {
			return nil, err
		}
		accounts = append(accounts, st)
	}
	results = results[:max(0, len(results)-h.ShortResults)]
	out := map[string]any{"results": unwrap(results)}
	if len(req.Accounts) > 0 {
		out["accounts"] = unwrap(accounts)
	}
	return out, nil
}
