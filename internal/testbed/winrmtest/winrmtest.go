// Package winrmtest is a WS-Management server for tests: real SOAP over
// HTTPS (or plain HTTP) that the real masterzen/winrm client talks to, as
// strict as Windows where jitform's code could go wrong. It checks Basic
// (local accounts, only when allowed) and NTLMv2 logins bound to their TCP
// connection, keeps shells and commands, takes stdin across Send requests
// within MaxEnvelopeSizekb, returns output in pieces across polls with
// w:TimedOut faults while a command runs, decodes the -EncodedCommand
// command line and the stdin (script line, then JSON data), and answers
// jitform's read and apply data contract from an in-memory model of each
// host's local groups with ADSI's semantics (path comparison in IsMember,
// COM error codes from Add and Remove, binding by name), PowerShell's
// (case-insensitive hashtables, CLIXML errors) and the console's (code
// page 437).
//
// It cannot run PowerShell: model.go says how it reads which constructs a
// script uses. What that leaves unproven is said in docs/winrm.md.
package winrmtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding/unicode"

	"github.com/jitform/jitform/internal/testbed/testca"
)

// Server is the fake. Hosts are told apart by the HTTP Host header, so many
// simulated hosts share one listener (tests dial every name to it).
type Server struct {
	URL    string // https://127.0.0.1:PORT
	Addr   string // 127.0.0.1:PORT
	CAFile string // PEM of the server certificate, for ca_file
	User   string
	Pass   string

	srv *httptest.Server

	// Windows settings.
	MaxEnvelopeSizeKB int           // MaxEnvelopeSizekb: larger requests get a fault; replies are split to fit (default 150)
	OperationTimeout  time.Duration // how long a Receive waits for output before a w:TimedOut fault (default 1s)
	AllowUnencrypted  bool          // plain HTTP only: Service/AllowUnencrypted (default false: refused)
	AllowBasic        bool          // Service/Auth/Basic (default false); Basic logs in local accounts only
	plain             bool

	// CloseAfterChallenge: close the connection after an NTLM challenge,
	// as a proxy or a host under load may; the client must not finish the
	// handshake on another connection.
	CloseAfterChallenge bool

	mu         sync.Mutex
	challenges map[uint64][8]byte // NTLM server challenge per TCP connection
	authed     map[uint64]bool    // connections an NTLM login authenticated
	ntlmOK     int
	connSeq    atomic.Uint64
	hosts      map[string]*Host
	shells     map[string]*shell
	seq        int
}

// Host is one simulated Windows host.
type Host struct {
	mu       sync.Mutex
	Name     string
	Groups   []*Group
	Accounts map[string]string // SID -> DOMAIN\name; a member SID missing here is orphaned
	// Rights: user rights (local security policy), right name -> holder
	// SIDs; a SID missing from Accounts is orphaned (lsa.go).
	Rights map[string][]string
	// Users: local user accounts (lsa.go).
	Users []*User

	// Knobs.
	Latency time.Duration // added to every request
	Fail    bool          // answer every request with HTTP 500
	Drop    bool          // close the connection without an answer

	// Windows behaviours. The defaults are Windows' own; a knob set to
	// its non-default value makes the host more lenient or odd in one way.
	UTF8Console         bool   // stdin and stdout are UTF-8 (default: OEM code page 437, as on an en-US host)
	AutoRun             string // printed on stdout before the command's own output (cmd.exe AutoRun)
	DomainController    bool   // the host is a domain controller (DomainRole 5)
	ConstrainedLanguage bool   // PowerShell runs in constrained language mode (AppLocker, WDAC)
	IneffectiveWrites   bool   // ADSI Add and Remove report success but change nothing
	NoTaskScheduler     bool   // the Task Scheduler service is stopped: registering, listing and deleting tasks fail
	// KillAfterWrites: the PowerShell process dies right after the Nth
	// ADSI Add or Remove of a run (a crash, a reboot, a killed process):
	// nothing after it happens and no result comes back.
	KillAfterWrites int
	// ShortResults: the apply reply leaves off its last N change results
	// (a script that stopped early and still printed its JSON); the
	// changes themselves are made.
	ShortResults int

	// Task Scheduler and logon sessions (tasks.go).
	Tasks    []*Task
	Sessions []*Session
	clock    time.Time
	fired    []Firing

	// WinRM behaviours.
	RunTime     time.Duration // how long the command runs after its stdin ends; Receives meanwhile time out
	OutputChunk int           // bytes of output per Receive (default: as much as an envelope holds)
	DropReceive int           // the Nth Receive of this host (1-based) closes the connection without an answer

	// Counters and records.
	receives int
	Requests int
	Shells   int
	Runs     []Run
}

// Group is a local group.
type Group struct {
	SID, Name string
	Members   []string // SIDs
}

// Run is one command the host received.
type Run struct {
	CommandLine string // as sent
	Decoded     string // the -EncodedCommand script
	Script      string // the script from stdin's first line
	Data        string // the JSON after it
	Output      string // what the script wrote to stdout (before the console's encoding)
}

type shell struct {
	host  *Host
	id    string
	cmds  map[string]*command
	alive bool
}

type command struct {
	line    string
	stdin   bytes.Buffer
	eof     chan struct{}
	closed  bool
	started bool
	readyAt time.Time
	out     []byte // output not yet received
	errOut  []byte
	code    int
}

// New starts a server over HTTPS with the given user and password (Basic
// and NTLM).
func New(t testing.TB, user, pass string, hostNames ...string) *Server {
	return start(t, true, user, pass, hostNames...)
}

// NewHTTP starts a server over plain HTTP. Like Windows, it refuses
// unencrypted traffic (every request gets 401) unless AllowUnencrypted is
// set (Service/AllowUnencrypted = true).
func NewHTTP(t testing.TB, user, pass string, hostNames ...string) *Server {
	return start(t, false, user, pass, hostNames...)
}

func start(t testing.TB, https bool, user, pass string, hostNames ...string) *Server {
	t.Helper()
	s := &Server{User: user, Pass: pass, hosts: map[string]*Host{}, shells: map[string]*shell{}, challenges: map[uint64][8]byte{}, authed: map[uint64]bool{},
		MaxEnvelopeSizeKB: 150, OperationTimeout: time.Second, plain: !https}
	for _, h := range hostNames {
		s.AddHost(h)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = false
	s.srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, s.connSeq.Add(1))
	}
	t.Cleanup(s.srv.Close)
	if !https {
		s.srv.Start()
		s.URL = s.srv.URL
		s.Addr = strings.TrimPrefix(s.srv.URL, "http://")
		return s
	}
	bundle := testca.Issue(t, "*."+Domain, "127.0.0.1")
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{bundle.TLS(t)}}
	s.srv.StartTLS()
	s.URL = s.srv.URL
	s.Addr = strings.TrimPrefix(s.srv.URL, "https://")
	p := filepath.Join(t.TempDir(), "winrm-ca.pem")
	if err := os.WriteFile(p, bundle.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s.CAFile = p
	return s
}

// localAccount reports whether user names an account of the host itself:
// no domain, ".", or the host's name.
func localAccount(user, hostName string) bool {
	dom, _, ok := strings.Cut(user, `\`)
	return !ok || dom == "." || strings.EqualFold(dom, hostLabel(hostName))
}

type connKey struct{}

// connID is the TCP connection a request arrived on.
func connID(r *http.Request) uint64 {
	id, _ := r.Context().Value(connKey{}).(uint64)
	return id
}

// Domain is the DNS suffix simulated hosts are named under: the server's
// certificate is valid for *.winrm.test and 127.0.0.1.
const Domain = "winrm.test"

// AddHost adds a host with the well-known built-in groups and accounts.
func (s *Server) AddHost(name string) *Host {
	h := &Host{
		Name: name,
		Groups: []*Group{
			{SID: "S-1-5-32-544", Name: "Administrators", Members: []string{"S-1-5-21-1-2-3-500"}},
			{SID: "S-1-5-32-555", Name: "Remote Desktop Users"},
		},
		Accounts: map[string]string{
			"S-1-5-21-1-2-3-500":  strings.ToUpper(hostLabel(name)) + `\Administrator`,
			"S-1-5-21-9-9-9-1104": `CORP\alice`,
			"S-1-5-21-9-9-9-1105": `CORP\bob`,
			"S-1-5-21-9-9-9-1106": `CORP\svc-backup`,
		},
	}
	s.mu.Lock()
	s.hosts[strings.ToLower(name)] = h
	s.mu.Unlock()
	return h
}

// Host returns a host by name.
func (s *Server) Host(name string) *Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hosts[strings.ToLower(name)]
}

// Dial sends every connection to this server, whatever host it names.
func (s *Server) Dial(network, _ string) (net.Conn, error) {
	return net.Dial(network, s.Addr)
}

func hostLabel(h string) string {
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// Members returns a group's member SIDs.
func (h *Host) Members(groupSID string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.Groups {
		if g.SID == groupSID {
			return append([]string(nil), g.Members...)
		}
	}
	return nil
}

// Stats returns the request and shell counters.
func (h *Host) Stats() (requests, shells int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Requests, h.Shells
}

// RunsSeen returns the commands received so far.
func (h *Host) RunsSeen() []Run {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Run(nil), h.Runs...)
}

// SOAP envelope, read by local names.
type envelope struct {
	Header struct {
		Action   string `xml:"Action"`
		Selector []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"SelectorSet>Selector"`
	} `xml:"Header"`
	Body struct {
		CommandLine *struct {
			Command   string   `xml:"Command"`
			Arguments []string `xml:"Arguments"`
		} `xml:"CommandLine"`
		Send *struct {
			Streams []struct {
				CommandID string `xml:"CommandId,attr"`
				End       string `xml:"End,attr"`
				Data      string `xml:",chardata"`
			} `xml:"Stream"`
		} `xml:"Send"`
		Receive *struct {
			Desired struct {
				CommandID string `xml:"CommandId,attr"`
			} `xml:"DesiredStream"`
		} `xml:"Receive"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
		} `xml:"Signal"`
	} `xml:"Body"`
}

func (e *envelope) shellID() string {
	for _, s := range e.Header.Selector {
		if s.Name == "ShellId" {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

const (
	nsHead  = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"><s:Header><a:Action>`
	shellNS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
)

func reply(w http.ResponseWriter, action, body string) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	fmt.Fprintf(w, "%s%s</a:Action></s:Header><s:Body>%s</s:Body></s:Envelope>", nsHead, action, body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host := s.Host(hostLabelOf(r.Host))
	if host == nil {
		http.Error(w, "no such host", http.StatusNotFound)
		return
	}
	host.mu.Lock()
	host.Requests++
	lat, fail, drop := host.Latency, host.Fail, host.Drop
	host.mu.Unlock()
	if lat > 0 {
		time.Sleep(lat)
	}
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
	}
	if fail {
		writeFault(w, host, "w:AccessDenied", "5", "Access is denied. ")
		return
	}
	if s.plain && !s.AllowUnencrypted {
		// Windows accepts no unencrypted message on HTTP unless allowed;
		// NTLM or Kerberos message encryption is not modelled.
		w.Header().Add("WWW-Authenticate", "Negotiate")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// Basic, or NTLM (Negotiate) as Windows offers both.
	authz := r.Header.Get("Authorization")
	s.mu.Lock()
	authed := s.authed[connID(r)]
	s.mu.Unlock()
	if schema, token, ok := strings.Cut(authz, " "); ok && (schema == "NTLM" || schema == "Negotiate") {
		if !s.ntlm(w, r, schema, token) {
			return
		}
	} else if authz == "" && authed {
		// This connection was authenticated by an NTLM login.
	} else if u, p, ok := r.BasicAuth(); !ok || !s.AllowBasic || !localAccount(u, host.Name) || u != s.User || p != s.Pass {
		// Windows offers Basic only when Service/Auth/Basic is on, and
		// Basic logs in local accounts only.
		w.Header().Add("WWW-Authenticate", "Negotiate")
		w.Header().Add("WWW-Authenticate", "NTLM")
		if s.AllowBasic {
			w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if max := s.MaxEnvelopeSizeKB * 1024; max > 0 && len(raw) > max {
		// MS-WSMV 3.1.4.1.20: MaxEnvelopeSizekb also limits requests. The
		// exact fault Windows sends is not modelled (no code).
		writeFault(w, host, "w:EncodingLimit", "",
			fmt.Sprintf("The WS-Management service cannot process the request because the request of %d bytes exceeds the maximum envelope size (MaxEnvelopeSizekb = %d). ", len(raw), s.MaxEnvelopeSizeKB))
		return
	}
	var env envelope
	if err := xml.Unmarshal(raw, &env); err != nil {
		http.Error(w, "bad SOAP: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch env.Header.Action {
	case "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create":
		s.mu.Lock()
		s.seq++
		id := fmt.Sprintf("SHELL-%08d", s.seq)
		s.shells[id] = &shell{host: host, id: id, cmds: map[string]*command{}, alive: true}
		s.mu.Unlock()
		host.mu.Lock()
		host.Shells++
		host.mu.Unlock()
		reply(w, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
			`<x:ResourceCreated><a:Address>`+s.URL+`/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">`+id+`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)
	case shellNS + "Command":
		sh := s.shell(env.shellID())
		if sh == nil || env.Body.CommandLine == nil {
			http.Error(w, "unknown shell", http.StatusBadRequest)
			return
		}
		line := strings.TrimSpace(env.Body.CommandLine.Command)
		for _, a := range env.Body.CommandLine.Arguments {
			line += " " + a
		}
		s.mu.Lock()
		s.seq++
		cid := fmt.Sprintf("CMD-%08d", s.seq)
		sh.cmds[cid] = &command{line: line, eof: make(chan struct{})}
		s.mu.Unlock()
		reply(w, shellNS+"CommandResponse", `<rsp:CommandResponse><rsp:CommandId>`+cid+`</rsp:CommandId></rsp:CommandResponse>`)
	case shellNS + "Send":
		sh := s.shell(env.shellID())
		if sh == nil || env.Body.Send == nil {
			http.Error(w, "unknown shell", http.StatusBadRequest)
			return
		}
		for _, st := range env.Body.Send.Streams {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
			if err != nil {
				http.Error(w, "bad stdin", http.StatusBadRequest)
				return
			}
			s.mu.Lock()
			c := sh.cmds[st.CommandID]
			if c != nil && !c.closed {
				c.stdin.Write(b)
				if st.End == "true" {
					c.closed = true
					close(c.eof)
				}
			}
			s.mu.Unlock()
		}
		reply(w, shellNS+"SendResponse", `<rsp:SendResponse/>`)
	case shellNS + "Receive":
		sh := s.shell(env.shellID())
		if sh == nil || env.Body.Receive == nil {
			http.Error(w, "unknown shell", http.StatusBadRequest)
			return
		}
		cid := env.Body.Receive.Desired.CommandID
		s.mu.Lock()
		c := sh.cmds[cid]
		s.mu.Unlock()
		if c == nil {
			http.Error(w, "unknown command", http.StatusBadRequest)
			return
		}
		s.receive(w, host, c, cid)
	case shellNS + "Signal":
		reply(w, shellNS+"SignalResponse", `<rsp:SignalResponse/>`)
	case "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete":
		s.mu.Lock()
		delete(s.shells, env.shellID())
		s.mu.Unlock()
		reply(w, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", "")
	default:
		http.Error(w, "unsupported action "+env.Header.Action, http.StatusBadRequest)
	}
}

// receive answers a Receive as WinRM does: it waits up to OperationTimeout
// for output and then faults with w:TimedOut; output is returned in pieces
// that fit an envelope (or OutputChunk), the last with CommandState Done.
func (s *Server) receive(w http.ResponseWriter, host *Host, c *command, cid string) {
	deadline := time.Now().Add(s.OperationTimeout)
	select {
	case <-c.eof:
	case <-time.After(s.OperationTimeout):
		writeFault(w, host, "w:TimedOut", "2150858793", timedOutMsg)
		return
	}
	s.mu.Lock()
	if !c.started {
		c.started = true
		c.out, c.errOut, c.code = host.Execute(c.line, c.stdin.String())
		host.mu.Lock()
		c.readyAt = time.Now().Add(host.RunTime)
		host.mu.Unlock()
	}
	readyAt := c.readyAt
	s.mu.Unlock()
	if readyAt.After(deadline) {
		time.Sleep(time.Until(deadline))
		writeFault(w, host, "w:TimedOut", "2150858793", timedOutMsg)
		return
	}
	time.Sleep(time.Until(readyAt))
	host.mu.Lock()
	host.receives++
	drop := host.DropReceive > 0 && host.receives == host.DropReceive
	chunk := host.OutputChunk
	host.mu.Unlock()
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	// Base64 makes output a third larger; leave room for the envelope.
	room := (s.MaxEnvelopeSizeKB*1024 - 2048) * 3 / 4
	if chunk <= 0 || chunk > room {
		chunk = room
	}
	s.mu.Lock()
	n := min(chunk, len(c.out))
	out := c.out[:n]
	c.out = c.out[n:]
	m := min(chunk-n, len(c.errOut))
	errOut := c.errOut[:m]
	c.errOut = c.errOut[m:]
	done := len(c.out) == 0 && len(c.errOut) == 0
	code := c.code
	s.mu.Unlock()
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	if len(out) > 0 || done {
		fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s">%s</rsp:Stream>`, cid, base64.StdEncoding.EncodeToString(out))
	}
	if len(errOut) > 0 {
		fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s">%s</rsp:Stream>`, cid, base64.StdEncoding.EncodeToString(errOut))
	}
	if done {
		fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream><rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream><rsp:CommandState CommandId="%s" State="%sCommandState/Done"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, cid, cid, cid, shellNS, code)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%sCommandState/Running"/>`, cid, shellNS)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	reply(w, shellNS+"ReceiveResponse", b.String())
}

const timedOutMsg = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "

// writeFault answers with a WS-Management fault, as Windows does: HTTP 500
// and a SOAP fault carrying a WSManFault.
func writeFault(w http.ResponseWriter, host *Host, subcode, code, msg string) {
	var m strings.Builder
	_ = xml.EscapeText(&m, []byte(msg))
	if code != "" {
		code = ` Code="` + code + `"`
	}
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%shttp://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"%s Machine="%s"><f:Message>%s</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`,
		nsHead, subcode, m.String(), code, host.Name, m.String())
}

func hostLabelOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	return h
}

func (s *Server) shell(id string) *shell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shells[id]
}

// DecodeCommandLine returns the script of a "powershell.exe ...
// -EncodedCommand B64" line.
func DecodeCommandLine(line string) (string, error) {
	_, b64, ok := strings.Cut(line, "-EncodedCommand ")
	if !ok {
		return "", fmt.Errorf("no -EncodedCommand")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", err
	}
	return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder().String(string(raw))
}
