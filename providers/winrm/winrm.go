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
	timeout    time.Duration
	secret     string
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
	ep := winrm.NewEndpoint(c.Address, port, c.HTTPS, c.Insecure, ca, nil, nil, timeout)
	params := winrm.NewParameters(fmt.Sprintf("PT%dS", int(timeout.Seconds())), "en-US", 153600)
	params.Dial = dial
	if c.Auth == config.WinRMAuthNTLM {
		// The NTLM transport takes the dialer itself; Parameters.Dial only
		// reaches the default transport.
		params.TransportDecorator = func() winrm.Transporter { return winrm.NewClientNTLMWithDial(dial) }
	}
	cl, err := winrm.NewClientWithParameters(ep, c.User, password, params)
	if err != nil {
		return nil, fmt.Errorf("%s: set up client for %s: %w", t.Addr, c.Address, err)
	}
	return &target{addr: t.Addr, host: c.Address, client: cl, timeout: timeout, secret: password, report: opts.Progress}, nil
}

func (t *target) Close() error { return nil }

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
		return fmt.Errorf("%s: %s on %s: %w: PowerShell exited %d: %s", t.addr, step, t.host, errStarted, code, clip(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("%s: %s on %s: %w: unreadable script output (%v): %s", t.addr, step, t.host, errStarted, err, clip(stdout.String()))
	}
	return nil
}

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
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(cmd.Stdin, strings.NewReader(stdin))
		cmd.Stdin.Close()
	}()
	go func() { defer wg.Done(); _, _ = io.Copy(stdout, cmd.Stdout) }()
	go func() { defer wg.Done(); _, _ = io.Copy(stderr, cmd.Stderr) }()
	cmd.Wait()
	wg.Wait()
	cmd.Close()
	if err := ctx.Err(); err != nil {
		return 1, fmt.Errorf("%w: %w", errStarted, err)
	}
	return cmd.ExitCode(), nil
}

// explain adds what to check, and makes sure the password never shows.
func (t *target) explain(err error) error {
	msg := err.Error()
	if t.secret != "" {
		msg = strings.ReplaceAll(msg, t.secret, "(sensitive)")
	}
	switch {
	case strings.Contains(msg, "401"):
		msg += " (authentication failed: check user, password and auth)"
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
	req := ReadRequest{Op: "read", Groups: []GroupRef{}, Principals: principals}
	if req.Principals == nil {
		req.Principals = []string{}
	}
	for _, g := range groups {
		req.Groups = append(req.Groups, groupRef(g))
	}
	t.progress("%s: reading %d group(s), resolving %d principal(s)", t.addr, len(groups), len(principals))
	var resp ReadResponse
	if err := t.run(ctx, "read groups", ReadScript, req, &resp); err != nil {
		return nil, nil, err
	}
	obs := make(map[string]providers.Observation, len(groups))
	for _, g := range groups {
		st, ok := resp.Groups[g.Addr]
		switch {
		case !ok:
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: the host did not report group %s", t.addr, g.Addr)}
		case st.Error != "":
			obs[g.Addr] = providers.Observation{Err: fmt.Errorf("%s: read group %q on %s: %s", t.addr, g.GroupName, t.host, st.Error)}
		default:
			o := providers.Observation{Members: make([]providers.Member, 0, len(st.Members))}
			for _, m := range st.Members {
				o.Members = append(o.Members, providers.Member{ID: strings.ToUpper(m.SID), Name: m.Name})
			}
			obs[g.Addr] = o
		}
	}
	res := make(map[string]providers.Resolution, len(principals))
	for _, p := range principals {
		r, ok := resp.Principals[p]
		switch {
		case !ok:
			res[p] = providers.Resolution{Err: fmt.Errorf("%s did not resolve %q", t.addr, p)}
		case r.Error != "" || !IsSID(r.SID):
			res[p] = providers.Resolution{Err: fmt.Errorf("%s: cannot resolve %q on %s: %s", t.addr, p, t.host, r.Error)}
		default:
			res[p] = providers.Resolution{Member: providers.Member{ID: strings.ToUpper(r.SID), Name: r.Name}}
		}
	}
	return obs, res, nil
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
	var req ApplyRequest
	req.Op = "apply"
	var outs []providers.Outcome
	for _, gc := range changes {
		for _, c := range gc.Changes {
			outs = append(outs, providers.Outcome{Group: gc.Group.Addr, Change: c})
			req.Changes = append(req.Changes, Change{Group: groupRef(gc.Group), Action: string(c.Action), SID: c.Member.ID})
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
		switch r.Status {
		case "done":
			outs[i].Status = providers.Done
		case "already":
			outs[i].Status = providers.Already
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

var _ providers.Observer = (*target)(nil)
