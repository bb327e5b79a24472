package winrm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/jitform/jitform/internal/debuglog"
)

// Sizes on the wire. Windows' MaxEnvelopeSizekb is 500 by default since
// Server 2012 and 150 on older or hardened hosts; masterzen would send
// stdin in raw chunks of EnvelopeSize-1000 bytes, about 200 KB once in
// base64. jitform writes stdin in slices of stdinSlice bytes, each one Send
// envelope under 100 KB (base64 adds a third, the SOAP around it ~1.5 KB).
const (
	envelopeSize = 153600 // w:MaxEnvelopeSize: the largest reply jitform accepts
	stdinSlice   = 72 * 1024
)

// transporter posts SOAP envelopes for masterzen/winrm (winrm.Transporter).
//
// NTLM: Windows binds an NTLM login to the TCP connection it was made on.
// masterzen's NTLM client shares one http.Transport among all requests, and
// go-ntlmssp sends the negotiate, challenge and authenticate legs as separate
// round trips that release the connection in between, while jitform sends
// stdin and polls output at the same time: the last leg can leave on another
// connection and get 401 (go-ntlmssp#43). Here every SOAP request gets a
// transport of its own that holds at most one connection: the whole
// handshake and the request it authenticates travel on that one connection.
// A connection whose request succeeded goes back to a small pool and serves
// one request at a time after that: Windows keeps it authenticated, so the
// next request needs no new handshake (go-ntlmssp tries without one first,
// and runs it again on the same connection when the host asks).
//
// Basic: one pooled transport; Basic carries credentials on every request.
type transporter struct {
	url, user, password string
	ntlm, https         bool
	dial                func(network, addr string) (net.Conn, error)
	tls                 *tls.Config
	timeout             time.Duration
	shared              *http.Transport
	// lastSendErr is the last failed stdin Send: masterzen reports a
	// failed Send only as io.ErrShortWrite.
	lastSendErr atomic.Pointer[error]
	idle        chan *ntlmConn // NTLM: authenticated connections not in use
	// log (JITFORM_LOG) gets one record per SOAP request; target names it.
	log    *slog.Logger
	target string
}

// soapAction is the last word of a SOAP message's WS-Addressing action
// (Create, Command, Send, Receive, Signal, Delete).
func soapAction(msg string) string {
	_, rest, ok := strings.Cut(msg, "Action")
	if !ok {
		return "?"
	}
	_, rest, _ = strings.Cut(rest, ">")
	uri, _, _ := strings.Cut(rest, "<")
	if i := strings.LastIndexAny(uri, "/"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// ntlmConn is a transport that holds at most one TCP connection.
type ntlmConn struct {
	tr    *http.Transport
	dials atomic.Int32
}

func (t *transporter) getConn() *ntlmConn {
	select {
	case c := <-t.idle:
		c.dials.Store(0)
		return c
	default:
	}
	c := &ntlmConn{}
	base := t.dialer()
	c.tr = t.newTransport(func(network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return base(network, addr)
	})
	c.tr.MaxConnsPerHost = 1
	return c
}

func (t *transporter) putConn(c *ntlmConn) {
	select {
	case t.idle <- c:
	default:
		c.tr.CloseIdleConnections()
	}
}

// Close closes the idle connections.
func (t *transporter) Close() {
	if t.shared != nil {
		t.shared.CloseIdleConnections()
	}
	for {
		select {
		case c := <-t.idle:
			c.tr.CloseIdleConnections()
		default:
			return
		}
	}
}

func (t *transporter) Transport(ep *winrm.Endpoint) error {
	t.tls = &tls.Config{InsecureSkipVerify: ep.Insecure, ServerName: ep.TLSServerName, MinVersion: tls.VersionTLS12} //nolint:gosec // insecure = true is the user's explicit choice
	if len(ep.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ep.CACert) {
			return errors.New("ca_file holds no PEM certificate")
		}
		t.tls.RootCAs = pool
	}
	t.timeout = ep.Timeout
	t.idle = make(chan *ntlmConn, 4)
	if !t.ntlm {
		t.shared = t.newTransport(t.dialer())
	}
	return nil
}

func (t *transporter) dialer() func(network, addr string) (net.Conn, error) {
	if t.dial != nil {
		return t.dial
	}
	return (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).Dial
}

func (t *transporter) newTransport(dial func(network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		Dial:                  dial,
		TLSClientConfig:       t.tls.Clone(),
		ResponseHeaderTimeout: t.timeout,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
}

func (t *transporter) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	var rt http.RoundTripper = t.shared
	var conn *ntlmConn
	if t.ntlm {
		conn = t.getConn()
		rt = ntlmssp.Negotiator{RoundTripper: conn.tr}
	}
	msg := m.String()
	isSend := strings.Contains(msg, "windows/shell/Send<")
	status := 0 // the reply's HTTP status, for the log
	if t.log != nil {
		began := time.Now()
		defer func() {
			var err error
			if status != http.StatusOK {
				err = fmt.Errorf("HTTP %d", status)
			}
			attrs := []slog.Attr{slog.String("target", t.target), slog.String("action", soapAction(msg)),
				slog.Int("status", status), slog.Int("bytes_sent", len(msg))}
			if conn != nil {
				attrs = append(attrs, slog.Int("ntlm_dials", int(conn.dials.Load())))
			}
			debuglog.Op(context.Background(), t.log, "winrm request", began, err, attrs...)
		}()
	}
	req, err := http.NewRequest(http.MethodPost, t.url, strings.NewReader(msg)) //nolint:noctx // the winrm.Transporter interface carries no context; ResponseHeaderTimeout bounds it
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.user, t.password)
	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if resp != nil {
		status = resp.StatusCode
	}
	if err != nil {
		if conn != nil {
			conn.tr.CloseIdleConnections()
		}
		if isSend {
			t.lastSendErr.Store(&err)
		}
		return "", err // *url.Error: masterzen tells timeouts and EOF from it
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	if conn != nil {
		if err == nil && resp.StatusCode != http.StatusUnauthorized {
			t.putConn(conn) // still logged in, a fault or not
		} else {
			conn.tr.CloseIdleConnections()
		}
	}
	if err != nil {
		return "", fmt.Errorf("read the reply: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return string(body), nil
	}
	err = &httpError{Status: resp.StatusCode, NTLM: t.ntlm, HTTPS: t.https, SplitHandshake: conn != nil && conn.dials.Load() > 1,
		Fault: parseFault(body), Body: string(body)}
	if isSend {
		t.lastSendErr.Store(&err)
	}
	return "", err
}

// httpError is a reply other than 200 OK.
type httpError struct {
	Status         int
	NTLM, HTTPS    bool
	SplitHandshake bool   // the NTLM legs did not all travel on one connection
	Fault          *fault // the WS-Management fault in the body, if any
	Body           string
}

func (e *httpError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized && e.SplitHandshake:
		return "HTTP 401: the NTLM handshake was split across TCP connections (the host or a proxy closed the connection after its challenge); Windows binds an NTLM login to the connection it was made on, so this is not a wrong password"
	case e.Status == http.StatusUnauthorized && e.NTLM:
		return "HTTP 401: authentication failed: the host refused the NTLM login (check user and password, that the account may use WinRM: a local administrator or in Remote Management Users, and the host's NTLM policy)"
	case e.Status == http.StatusUnauthorized && !e.HTTPS:
		return "HTTP 401: authentication failed: check user and password; over plain HTTP Windows also refuses Basic unless the WinRM service allows it (Service/AllowUnencrypted = true, Service/Auth/Basic = true, local accounts only)"
	case e.Status == http.StatusUnauthorized:
		return "HTTP 401: authentication failed: check user and password; Basic works only for local accounts and only with Service/Auth/Basic = true on the host"
	case e.Fault != nil:
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Fault)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, clip(stripTags(e.Body)))
}

// stripTags keeps the text of an HTML or XML body, so an error never dumps
// markup.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteByte(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
