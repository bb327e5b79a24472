// Package winrm is the "winrm" target: local groups of a Windows host,
// managed over WS-Management with github.com/masterzen/winrm.
//
// Each phase is one PowerShell run in one shell: the plan phase resolves
// principals and reads every managed group of the host at once (Observe),
// the apply phase makes every change at once and reports one result per
// member. Members compare by SID, so localised Windows and renamed accounts
// produce no false changes.
package winrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/masterzen/winrm"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

var sidRE = regexp.MustCompile(`(?i)^S-1-[0-9]+(-[0-9]+)+$`)

// IsSID reports whether s is written as a SID.
func IsSID(s string) bool { return sidRE.MatchString(s) }

type target struct {
	addr, host string
	client     *winrm.Client
	transport  *transporter
	timeout    time.Duration
	secret     string
	allowDC    bool
	report     func(string, ...any)
}

// Open builds the client; it does not connect (the first run does), so
// opening hundreds of hosts is cheap and all I/O happens under a context.
func Open(ctx context.Context, t *config.Target, opts providers.Options) (providers.Target, error) {
	return open(ctx, t, opts, nil)
}

// open takes a dialer for tests and benchmarks, which reach simulated
// hosts by name.
func open(_ context.Context, t *config.Target, opts providers.Options, dial func(network, addr string) (net.Conn, error)) (*target, error) {
	c := t.WinRM
	if c == nil {
		return nil, fmt.Errorf("%s: not a winrm target", t.Addr)
	}
	// The password's env() is read now, when the target opens.
	password, err := c.Password.Value()
	if err != nil {
		return nil, fmt.Errorf("%s: password: %w", t.Addr, err)
	}
	if !c.HTTPS && !c.InsecurePlaintext {
		return nil, fmt.Errorf("%s: plain HTTP requires insecure_plaintext = true", t.Addr)
	}
	port := c.Port
	if port == 0 {
		port = config.DefaultWinRMHTTPSPort
		if !c.HTTPS {
			port = config.DefaultWinRMHTTPPort
		}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = config.DefaultWinRMTimeout
	}
	var ca []byte
	if c.CAFile != "" {
		p := c.CAFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(opts.BaseDir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: read ca_file: %w", t.Addr, err)
		}
		ca = b
	}
	if !c.HTTPS && c.Auth == config.WinRMAuthNTLM {
		// Windows refuses unencrypted WinRM traffic over HTTP by default
		// (Service/AllowUnencrypted = false); with NTLM it expects the
		// messages themselves to be sealed, which jitform does not do.
		return nil, fmt.Errorf("%s: auth = \"ntlm\" over plain HTTP is refused: Windows requires WinRM message encryption on HTTP, which jitform does not implement; use https = true (port 5986), or for a lab host that allows unencrypted traffic, auth = \"basic\" with a local account", t.Addr)
	}
	ep := winrm.NewEndpoint(c.Address, port, c.HTTPS, c.Insecure, ca, nil, nil, timeout)
	// The output poll blocks on the host for OperationTimeout; the HTTP
	// reply must be awaited longer than that (as pywinrm requires).
	op := timeout / 2
	if op > 20*time.Second {
		op = 20 * time.Second
	}
	if op < time.Second {
		op = time.Second
	}
	params := winrm.NewParameters(fmt.Sprintf("PT%dS", int(op.Seconds())), "en-US", envelopeSize)
	scheme := "http"
	if c.HTTPS {
		scheme = "https"
	}
	tr := &transporter{url: fmt.Sprintf("%s://%s/wsman", scheme, net.JoinHostPort(c.Address, fmt.Sprint(port))),
		user: c.User, password: password, ntlm: c.Auth == config.WinRMAuthNTLM, https: c.HTTPS, dial: dial,
		log: opts.Log, target: t.Addr}
	params.TransportDecorator = func() winrm.Transporter { return tr }
	cl, err := winrm.NewClientWithParameters(ep, c.User, password, params)
	if err != nil {
		return nil, fmt.Errorf("%s: set up client for %s: %w", t.Addr, c.Address, err)
	}
	return &target{addr: t.Addr, host: c.Address, client: cl, transport: tr, timeout: timeout, secret: password, allowDC: c.AllowDomainController, report: opts.Progress}, nil
}

func (t *target) Close() error {
	t.transport.Close()
	return nil
}

// errStarted marks failures after the command started: its effect is unknown.
var errStarted = errors.New("the command had started")

// run executes one script with its data in one shell and decodes its JSON
// output into out.
func (t *target) run(ctx context.Context, step, script string, data, out any) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	stdin, err := EncodeStdin(script, data)
	if err != nil {
		return fmt.Errorf("%s: %s on %s: %w", t.addr, step, t.host, err)
	}
	var stdout, stderr bytes.Buffer
	code, err := t.exec(ctx, stdin, &stdout, &stderr)
	if err != nil {
		return fmt.Errorf("%s: %s on %s: %w", t.addr, step, t.host, t.explain(err))
	}
	if code != 0 {
		return fmt.Errorf("%s: %s on %s: %w: PowerShell exited %d: %s", t.addr, step, t.host, errStarted, code, clip(DecodeCLIXML(stderr.String())))
	}
	result, ok := extractResult(stdout.String())
	if !ok {
		return fmt.Errorf("%s: %s on %s: %w: the script's output has no result between its markers: %s", t.addr, step, t.host, errStarted, clip(stdout.String()))
	}
	if err := json.Unmarshal([]byte(result), out); err != nil {
		return fmt.Errorf("%s: %s on %s: %w: unreadable script output (%v): %s", t.addr, step, t.host, errStarted, err, clip(result))
	}
	return nil
}

// The bootstrap writes the script's JSON result between these markers, so
// whatever else reaches stdout (a cmd.exe AutoRun that prints, a profile
// banner) cannot corrupt it. The JSON itself never contains '<' or '>': the
// bootstrap escapes them with everything above 0x7E.
const (
	resultBegin = "<<<JITFORM-RESULT>>>"
	resultEnd   = "<<<JITFORM-END>>>"
)

// extractResult returns the text between the last begin marker and the end
// marker after it.
func extractResult(out string) (string, bool) {
	i := strings.LastIndex(out, resultBegin)
	if i < 0 {
		return "", false
	}
	rest := out[i+len(resultBegin):]
	j := strings.Index(rest, resultEnd)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// exec runs the command line with stdin in one shell. Once the last
// stdin slice (with its end-of-file) has been sent, the script may run: any
// failure after that is wrapped in errStarted, whose effect is unknown.
// Before it, the script cannot have started its work, since it reads stdin
// to the end first.
func (t *target) exec(ctx context.Context, stdin string, stdout, stderr io.Writer) (int, error) {
	shell, err := t.client.CreateShell()
	if err != nil {
		return 1, fmt.Errorf("open shell: %w", err)
	}
	defer shell.Close()
	cmd, err := shell.ExecuteWithContext(ctx, CommandLine)
	if err != nil {
		return 1, fmt.Errorf("start command: %w", err)
	}
	t.transport.lastSendErr.Store(nil)
	var (
		wg                    sync.WaitGroup
		inErr, outErr, errErr error
		eofSent               atomic.Bool
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if inErr = sendStdin(cmd.Stdin, stdin, &eofSent); inErr != nil {
			_ = cmd.Close() // stop polling a command that cannot finish
		}
	}()
	go func() { defer wg.Done(); _, outErr = io.Copy(stdout, cmd.Stdout) }()
	go func() { defer wg.Done(); _, errErr = io.Copy(stderr, cmd.Stderr) }()
	cmd.Wait()
	wg.Wait()
	_ = cmd.Close()
	wrap := func(what string, err error) error {
		if eofSent.Load() {
			return fmt.Errorf("%w: %s: %w", errStarted, what, err)
		}
		return fmt.Errorf("%s (the script had not received all of its input, so it made no change): %w", what, err)
	}
	switch {
	case inErr != nil:
		if p := t.transport.lastSendErr.Load(); p != nil {
			inErr = fmt.Errorf("%w: %w", inErr, *p)
		}
		return 1, wrap("send stdin", inErr)
	case ctx.Err() != nil:
		return 1, wrap("wait for the command", ctx.Err())
	case outErr != nil:
		// The output poll failed before the host said Done: whatever
		// stdout holds is not the whole result.
		return 1, wrap("poll the command's output (no Done from the host)", outErr)
	case errErr != nil:
		return 1, wrap("poll the command's output (no Done from the host)", errErr)
	}
	return cmd.ExitCode(), nil
}

// sendStdin writes stdin in slices of stdinSlice bytes, one Send envelope
// each, then the end-of-file.
func sendStdin(w io.WriteCloser, data string, eofSent *atomic.Bool) error {
	for len(data) > 0 {
		n := min(stdinSlice, len(data))
		if _, err := io.WriteString(w, data[:n]); err != nil {
			return fmt.Errorf("a slice of %d bytes was not accepted (%w)", n, err)
		}
		data = data[n:]
	}
	eofSent.Store(true)
	return w.Close()
}

// explain adds what to check, and makes sure the password never shows.
func (t *target) explain(err error) error {
	msg := err.Error()
	if t.secret != "" {
		msg = strings.ReplaceAll(msg, t.secret, "(sensitive)")
	}
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		msg += " (TLS verification failed: check the host's certificate, or set ca_file)"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline"):
		msg += " (check that the host is up and WinRM listens on the port)"
	}
	if errors.Is(err, errStarted) {
		return fmt.Errorf("%w: %s", errStarted, msg)
	}
	return errors.New(msg)
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

func groupRef(g *config.Group) GroupRef {
	if IsSID(g.GroupName) {
		return GroupRef{Key: g.Addr, SID: strings.ToUpper(g.GroupName)}
	}
	return GroupRef{Key: g.Addr, Name: g.GroupName}
}

// Observe resolves principals and reads groups in one run (providers.Observer).
func (t *target) Observe(ctx context.Context, groups []*config.Group, principals []string) (map[string]providers.Observation, map[string]providers.Resolution, error) {
	req := newReadRequest()
	if principals != nil {
		req.Principals = principals
	}
	var rights []*config.Group
	all := groups
	groups = nil
	for _, g := range all {
		if g.SetKind() == config.SetRight {
			rights = append(rights, g)
			req.Rights = append(req.Rights, RightRef{Key: g.Addr, Name: g.GroupName})
			continue
		}
		groups = append(groups, g)
		req.Groups = append(req.Groups, groupRef(g))
	}
	t.progress("%s: reading %d group(s) and %d right(s), resolving %d principal(s)", t.addr, len(groups), len(rights), len(principals))
	var resp ReadResponse
	if err := t.run(ctx, "read groups", ReadScript, req, &resp); err != nil {
		return nil, nil, err
	}
	if len(resp.Groups) != len(req.Groups) || len(resp.Principals) != len(req.Principals) || len(resp.Rights) != len(req.Rights) {
		return nil, nil, fmt.Errorf("%s: read groups on %s: the host answered %d group(s), %d right(s) and %d principal(s) for %d, %d and %d asked", t.addr, t.host, len(resp.Groups), len(resp.Rights), len(resp.Principals), len(req.Groups), len(req.Rights), len(req.Principals))
	}
	dcErr := t.domainControllerError(resp.DomainRole)
	// A member with a pending dead-man's switch is one the host itself
	// removes at the switch's time: Member.Expires, as an expiring link.
	switchAt := map[[2]string]time.Time{}
	for _, sw := range resp.Switches {
		if sw.Error == "" && sw.At > 0 {
			// A right's switch is keyed by the right's name (its Group
			// is the right's name too).
			switchAt[[2]string{strings.ToUpper(sw.Group), strings.ToUpper(sw.Member)}] = time.Unix(sw.At, 0).UTC()
		}
	}
	obs := make(map[string]providers.Observation, len(groups))
	for i, g := range groups {
		st, ref := resp.Groups[i], req.Groups[i]
		switch {
		case st.Key != ref.Key:
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: the host answered for %q where %q was asked", t.addr, st.Key, ref.Key)}
		case dcErr != nil:
			obs[g.Addr] = providers.Observation{Err: dcErr}
		case st.Error != "":
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: read group %q on %s: %s", t.addr, g.GroupName, t.host, st.Error)}
		case ref.SID != "" && !strings.EqualFold(st.SID, ref.SID):
			// The script binds a group by name after translating its SID;
			// a local group with the name of the one asked for is another
			// group.
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: read group %q on %s: the group bound has SID %q, not %s", t.addr, g.GroupName, t.host, st.SID, ref.SID)}
		default:
			o := providers.Observation{Members: make([]providers.Member, 0, len(st.Members))}
			for _, m := range st.Members {
				id := strings.ToUpper(m.SID)
				o.Members = append(o.Members, providers.Member{ID: id, Name: m.Name, Expires: switchAt[[2]string{strings.ToUpper(st.SID), id}]})
			}
			obs[g.Addr] = o
		}
	}
	for i, g := range rights {
		st, ref := resp.Rights[i], req.Rights[i]
		switch {
		case st.Key != ref.Key:
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: the host answered for %q where %q was asked", t.addr, st.Key, ref.Key)}
		case dcErr != nil:
			obs[g.Addr] = providers.Observation{Err: dcErr}
		case st.Error != "":
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: read the holders of %s on %s: %s", t.addr, g.GroupName, t.host, st.Error)}
		default:
			o := providers.Observation{Members: make([]providers.Member, 0, len(st.Holders))}
			for _, m := range st.Holders {
				id := strings.ToUpper(m.SID)
				o.Members = append(o.Members, providers.Member{ID: id, Name: m.Name, Expires: switchAt[[2]string{strings.ToUpper(ref.Name), id}]})
			}
			obs[g.Addr] = o
		}
	}
	res := make(map[string]providers.Resolution, len(principals))
	for i, p := range principals {
		r := resp.Principals[i]
		switch {
		case r.Principal != p:
			res[p] = providers.Resolution{Err: fmt.Errorf("%s: the host answered for %q where %q was asked", t.addr, r.Principal, p)}
		case r.Error != "" || !IsSID(r.SID):
			res[p] = providers.Resolution{Err: fmt.Errorf("%s: cannot resolve %q on %s: %s", t.addr, p, t.host, r.Error)}
		default:
			res[p] = providers.Resolution{Member: providers.Member{ID: strings.ToUpper(r.SID), Name: r.Name}}
		}
	}
	return obs, res, nil
}

// domainControllerError refuses a domain controller's groups unless the
// target allows it: on a DC there are no local groups, Administrators
// (S-1-5-32-544) and every other group being the domain's. A host that
// cannot tell its role is refused too.
func (t *target) domainControllerError(role *int) error {
	if t.allowDC {
		return nil
	}
	switch {
	case role == nil || *role < 0:
		return fmt.Errorf("%s: %s did not say whether it is a domain controller (Win32_ComputerSystem.DomainRole); its groups are refused unless allow_domain_controller = true", t.addr, t.host)
	case *role >= 4:
		return fmt.Errorf("%s: %s is a domain controller: its Administrators and every other group are the domain's, not the host's; refused unless the target sets allow_domain_controller = true", t.addr, t.host)
	}
	return nil
}

func (t *target) Resolve(ctx context.Context, principals []string) (map[string]providers.Resolution, error) {
	_, res, err := t.Observe(ctx, nil, principals)
	return res, err
}

func (t *target) Read(ctx context.Context, groups []*config.Group) (map[string]providers.Observation, error) {
	obs, _, err := t.Observe(ctx, groups, nil)
	if err != nil {
		// An unreachable host is a per-group fact: the planner marks the
		// groups unreadable and plans nothing for them.
		out := make(map[string]providers.Observation, len(groups))
		for _, g := range groups {
			out[g.Addr] = providers.Observation{Err: err}
		}
		return out, nil
	}
	return obs, nil
}

// Apply makes all of the host's changes in one run.
func (t *target) Apply(ctx context.Context, changes []providers.GroupChange) ([]providers.Outcome, error) {
	req := ApplyRequest{Op: "apply", AllowDomainController: t.allowDC, Changes: []Change{}, Accounts: []AccountSet{}}
	var outs []providers.Outcome
	for _, gc := range changes {
		for _, c := range gc.Changes {
			outs = append(outs, providers.Outcome{Group: gc.Group.Addr, Change: c})
			ch := Change{Group: groupRef(gc.Group), Action: string(c.Action), SID: c.Member.ID}
			if gc.Group.SetKind() == config.SetRight {
				ch.Group, ch.Right = GroupRef{Key: gc.Group.Addr}, gc.Group.GroupName
			}
			if c.Action == providers.Add && !c.Member.Expires.IsZero() {
				// The dead-man's switch: the host removes the member at
				// window end + grace if jitform has not by then (and with
				// end_sessions logs its sessions off).
				ch.SwitchAt, ch.Grant = c.Member.Expires.Add(SwitchGrace).Unix(), c.Member.Grant
			}
			ch.EndSessions = gc.Group.Attributes.EndSessions && (c.Action == providers.Remove || ch.SwitchAt != 0)
			req.Changes = append(req.Changes, ch)
		}
	}
	if len(req.Changes) == 0 {
		return nil, nil
	}
	t.progress("%s: applying %d change(s)", t.addr, len(req.Changes))
	var resp ApplyResponse
	if err := t.run(ctx, "apply changes", ApplyScript, req, &resp); err != nil {
		st := providers.Failed
		if errors.Is(err, errStarted) {
			st = providers.Unknown // the script may have made some changes
		}
		for i := range outs {
			outs[i].Status, outs[i].Err = st, err
		}
		return outs, nil
	}
	for i := range outs {
		if i >= len(resp.Results) {
			outs[i].Status, outs[i].Err = providers.Unknown, fmt.Errorf("%s: no result for change %d", t.addr, i)
			continue
		}
		r := resp.Results[i]
		if req.Changes[i].EndSessions && req.Changes[i].Action == string(providers.Remove) && (r.Sessions != nil || r.SessionsError != "") {
			se := &providers.SessionsEnded{Host: t.host}
			if r.Sessions != nil {
				se.Count = *r.Sessions
			}
			if r.SessionsError != "" {
				se.Err = fmt.Errorf("%s: end the sessions of %s on %s: %s", t.addr, outs[i].Change.Member.Name, t.host, r.SessionsError)
			}
			outs[i].Sessions = se
		}
		if r.SwitchError != "" {
			t.progress("%s: %s %s: the dead-man's switch on %s: %s", t.addr, outs[i].Change.Action, outs[i].Change.Member.ID, t.host, r.SwitchError)
		}
		switch r.Status {
		case "done":
			outs[i].Status = providers.Done
		case "already":
			outs[i].Status = providers.Already
		case "unknown":
			outs[i].Status, outs[i].Err = providers.Unknown, fmt.Errorf("%s: %s %s in %s on %s: %s", t.addr, outs[i].Change.Action, outs[i].Change.Member.Name, outs[i].Group, t.host, r.Error)
		default:
			outs[i].Status, outs[i].Err = providers.Failed, fmt.Errorf("%s: %s %s in %s on %s: %s", t.addr, outs[i].Change.Action, outs[i].Change.Member.Name, outs[i].Group, t.host, r.Error)
		}
	}
	return outs, nil
}

func (t *target) progress(format string, args ...any) {
	if t.report != nil {
		t.report(format, args...)
	}
}

// Switches lists the dead-man's switches pending on the host
// (providers.SwitchLister): one read run with no group and no principal.
func (t *target) Switches(ctx context.Context) ([]providers.Switch, error) {
	var resp ReadResponse
	if err := t.run(ctx, "list switches", ReadScript, newReadRequest(), &resp); err != nil {
		return nil, err
	}
	if resp.SwitchesError != "" {
		return nil, fmt.Errorf("%s: list the scheduled tasks in %s on %s: %s", t.addr, SwitchTaskPath, t.host, resp.SwitchesError)
	}
	out := make([]providers.Switch, 0, len(resp.Switches))
	for _, sw := range resp.Switches {
		if sw.Error != "" {
			return nil, fmt.Errorf("%s: scheduled task %s on %s: %s", t.addr, sw.Name, t.host, sw.Error)
		}
		out = append(out, providers.Switch{Host: t.host, Name: sw.Name, Group: strings.ToUpper(sw.Group), Member: strings.ToUpper(sw.Member), Grant: sw.Grant, At: time.Unix(sw.At, 0).UTC()})
	}
	return out, nil
}

// newReadRequest is an empty read: every list present (the script's
// @($req.x) of a missing property would be one $null element).
func newReadRequest() ReadRequest {
	return ReadRequest{Op: "read", Groups: []GroupRef{}, Principals: []string{}, Rights: []RightRef{}, Accounts: []AccountRef{}}
}

// SetKinds: local groups and user rights (providers.SetKinds).
func (t *target) SetKinds() []string { return []string{config.SetGroup, config.SetRight} }

var (
	_ providers.Observer       = (*target)(nil)
	_ providers.SwitchLister   = (*target)(nil)
	_ providers.SetKinds       = (*target)(nil)
	_ providers.AccountManager = (*target)(nil)
)
