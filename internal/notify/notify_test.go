package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

const (
	secret   = "whsec-Zq9-never-in-a-payload"
	urlToken = "T0KEN-in-the-path"
)

// receiver is a local webhook endpoint that records what it got.
type receiver struct {
	mu        sync.Mutex
	bodies    [][]byte
	headers   []http.Header
	status    []int // statuses to answer in turn; then 200
	calls     atomic.Int32
	srv       *httptest.Server
	hangUntil chan struct{}
}

func newReceiver(t *testing.T, status ...int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := int(r.calls.Add(1))
		if r.hangUntil != nil {
			select {
			case <-r.hangUntil:
			case <-req.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		if n <= len(r.status) {
			w.WriteHeader(r.status[n-1])
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func hook(url, format string, events ...string) *config.Notify {
	if len(events) == 0 {
		events = config.NotifyEvents
	}
	u, err := neturl.Parse(url)
	if err != nil {
		panic(err)
	}
	h := &config.Notify{Kind: "webhook", Name: "approvers", Addr: "notify.webhook.approvers", URL: config.NewSecret(url),
		Host: u.Host, Events: events, Format: format}
	if format == config.NotifyFormatJSON {
		h.Secret = config.NewSecret(secret)
	}
	return h
}

func requestEvent() Event {
	s := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	e := s.Add(2 * time.Hour)
	return Event{Type: config.NotifyRequest, Time: s, Summary: "bob requests 2h0m0s for bob under policy.db: failover",
		Grant: "g-abcdefghij", Policy: "policy.db", Principal: "bob", Actor: "bob", Ticket: "CHG1", WindowStart: &s, WindowEnd: &e}
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestSignedJSONDelivery: the body is the documented payload, signed with
// HMAC-SHA256 of the exact bytes, and carries no secret.
func TestSignedJSONDelivery(t *testing.T) {
	rcv := newReceiver(t)
	n := &Notifier{Hooks: []*config.Notify{hook(rcv.srv.URL+"/hook/"+urlToken, config.NotifyFormatJSON)}}
	res := n.Notify(context.Background(), requestEvent())
	if res.Delivered != 1 || res.Failed != 0 || res.Attempts != 1 {
		t.Fatalf("result %+v", res)
	}
	body, hdr := rcv.bodies[0], rcv.headers[0]
	sig := hdr.Get(SignatureHeader)
	if !strings.HasPrefix(sig, "sha256=") || !Verify([]byte(secret), body, sig) {
		t.Errorf("signature %q does not verify over the body", sig)
	}
	if Verify([]byte("another-secret"), body, sig) || Verify([]byte(secret), append(body, ' '), sig) {
		t.Error("the signature verifies with a wrong secret or a changed body")
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.FormatVersion != "1.0" || p.Source != "jitform" || p.Hook != "notify.webhook.approvers" || p.Event.Type != "request" ||
		p.Event.Grant != "g-abcdefghij" || p.Delivery == "" || hdr.Get("X-Jitform-Delivery") != p.Delivery || hdr.Get("X-Jitform-Event") != "request" {
		t.Errorf("payload %+v headers %v", p, hdr)
	}
	assertNoSecret(t, body, hdr)
}

func assertNoSecret(t *testing.T, body []byte, hdr http.Header) {
	t.Helper()
	all := string(body)
	for k, vs := range hdr {
		if k != SignatureHeader {
			all += "\n" + k + ": " + strings.Join(vs, ",")
		}
	}
	if strings.Contains(all, secret) || strings.Contains(all, urlToken) {
		t.Errorf("a secret reached the request:\n%s", all)
	}
}

func TestSlackFormat(t *testing.T) {
	rcv := newReceiver(t)
	h := hook(rcv.srv.URL+"/services/"+urlToken, config.NotifyFormatSlack)
	res := (&Notifier{Hooks: []*config.Notify{h}}).Notify(context.Background(), requestEvent())
	if res.Delivered != 1 {
		t.Fatalf("result %+v", res)
	}
	var msg map[string]any
	if err := json.Unmarshal(rcv.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	text, _ := msg["text"].(string)
	if len(msg) != 1 || !strings.HasPrefix(text, "*jitform request*: bob requests") || !strings.Contains(text, "ticket CHG1") {
		t.Errorf("Slack message %s", rcv.bodies[0])
	}
	if rcv.headers[0].Get(SignatureHeader) != "" {
		t.Error("a hook without a secret must not send a signature")
	}
	assertNoSecret(t, rcv.bodies[0], rcv.headers[0])
}

// TestRetries: 5xx and 429 are retried with backoff until one succeeds; a
// 4xx is final.
func TestRetries(t *testing.T) {
	tests := []struct {
		name          string
		status        []int
		wantDelivered int
		wantCalls     int32
	}{
		{"503 then 429 then success: three attempts", []int{503, 429}, 1, 3},
		{"every attempt 500: gives up after four", []int{500, 500, 500, 500, 500}, 0, 4},
		{"400 is not retried", []int{400}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.status...)
			logs := &logSink{}
			n := &Notifier{Hooks: []*config.Notify{hook(rcv.srv.URL+"/"+urlToken, config.NotifyFormatJSON)}, Backoff: 10 * time.Millisecond, Log: logs.log}
			res := n.Notify(context.Background(), requestEvent())
			if res.Delivered != tt.wantDelivered || rcv.calls.Load() != tt.wantCalls || res.Attempts != int(tt.wantCalls) {
				t.Errorf("result %+v, %d calls; want %d delivered, %d calls", res, rcv.calls.Load(), tt.wantDelivered, tt.wantCalls)
			}
			if tt.wantDelivered == 0 && (res.Failed != 1 || !strings.Contains(logs.String(), "notify.webhook.approvers")) {
				t.Errorf("a failed delivery must be counted and logged: %+v, log %q", res, logs)
			}
			if strings.Contains(logs.String(), urlToken) {
				t.Errorf("the log shows the URL's secret path: %s", logs)
			}
			// Every retry carries the same signed body.
			for i := 1; i < len(rcv.bodies); i++ {
				if string(rcv.bodies[i]) != string(rcv.bodies[0]) {
					t.Error("a retry changed the body")
				}
			}
		})
	}
}

// TestDeadEndpointsDoNotBlock: a refused connection and a server that never
// answers both end within the budget, counted and logged, never an error.
func TestDeadEndpointsDoNotBlock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/" + urlToken
	ln.Close()

	hanging := newReceiver(t)
	hanging.hangUntil = make(chan struct{})
	defer close(hanging.hangUntil)

	healthy := newReceiver(t)
	logs := &logSink{}
	n := &Notifier{
		Hooks: []*config.Notify{
			hook(refused, config.NotifyFormatJSON),
			hook(hanging.srv.URL+"/"+urlToken, config.NotifyFormatJSON),
			hook(healthy.srv.URL+"/"+urlToken, config.NotifyFormatJSON),
		},
		Budget: 700 * time.Millisecond, Backoff: 50 * time.Millisecond, Log: logs.log,
	}
	start := time.Now()
	res := n.Notify(context.Background(), requestEvent())
	took := time.Since(start)
	if took > 2*time.Second {
		t.Errorf("Notify took %s with a 700ms budget", took)
	}
	if res.Delivered != 1 || res.Failed != 2 {
		t.Errorf("want the healthy hook delivered and two failures counted: %+v", res)
	}
	if strings.Count(logs.String(), "not delivered") != 2 || strings.Contains(logs.String(), urlToken) {
		t.Errorf("logs: %s", logs)
	}
	// A cancelled command context does not cut deliveries short, the
	// budget does.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := (&Notifier{Hooks: []*config.Notify{hook(healthy.srv.URL+"/x", config.NotifyFormatJSON)}}).Notify(ctx, requestEvent()); res.Delivered != 1 {
		t.Errorf("delivery after the command's context ended: %+v", res)
	}
}

func TestEventsFilteredPerHook(t *testing.T) {
	rcv := newReceiver(t)
	n := &Notifier{Hooks: []*config.Notify{hook(rcv.srv.URL+"/x", config.NotifyFormatJSON, config.NotifyBreakGlass)}}
	res := n.Notify(context.Background(), requestEvent())
	if res.Delivered != 0 || rcv.calls.Load() != 0 {
		t.Errorf("a hook that subscribes to break_glass only got a request: %+v", res)
	}
}

func TestFromApply(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ended := now.Add(-47 * time.Minute)
	recent := now.Add(-30 * time.Second)
	rm := func(member string, end *time.Time, kind string) planner.Change {
		return planner.Change{Action: "remove", Group: "group.db", Member: "uid=" + member, MemberName: member,
			Reason: planner.Reason{Kind: kind, Grant: "grant.x", WindowEnd: end}}
	}
	outs := []operation.Outcome{
		{Change: rm("dave", &ended, planner.ReasonWindowEnded), Status: providers.Failed, Err: errors.New("LDAP Result Code 52")},
		{Change: rm("bob", &ended, planner.ReasonWindowEnded), Status: providers.Done},
		{Change: rm("erin", &recent, planner.ReasonWindowEnded), Status: providers.Done},
		{Change: rm("mallory", nil, planner.ReasonUndeclared), Status: providers.Done},
		{Change: planner.Change{Action: "add", Group: "group.db", Member: "uid=alice"}, Status: providers.Failed},
	}
	evs := FromApply(outs, now, 15*time.Minute)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.Member)
	}
	if strings.Join(got, ",") != "removal_failed uid=dave,window_ended_late uid=bob" {
		t.Errorf("events %q", got)
	}
	if len(evs) == 2 && (*evs[1].LatencySeconds != 47*60 || evs[0].Error != "LDAP Result Code 52") {
		t.Errorf("details %+v %+v", evs[0], evs[1])
	}
}

func TestFromLedger(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	mk := func(typ, actor string, payload any) state.Event {
		ev, err := state.NewSignedEvent(typ, actor, at, payload)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	tests := []struct {
		ev   state.Event
		want string
	}{
		{mk(state.EventRequest, "bob", state.GrantRequest{ID: "g-abcdefghij", Policy: "policy.db", Principal: "bob", Duration: "2h0m0s", Reason: "r"}), "request"},
		{mk(state.EventRequest, "erin", state.GrantRequest{ID: "g-abcdefghik", Policy: "policy.web", Principal: "erin", Duration: "1h0m0s", Reason: "outage", BreakGlass: true}), "break_glass"},
		{mk(state.EventApprove, "carol", state.GrantDecision{Grant: "g-abcdefghij"}), "approve"},
		{mk(state.EventDeny, "carol", state.GrantDecision{Grant: "g-abcdefghij"}), "deny"},
		{mk(state.EventRevoke, "carol", state.GrantDecision{Grant: "grant.alice"}), "revoke"},
		{mk(state.EventReview, "carol", state.GrantDecision{Grant: "g-abcdefghik"}), ""},
	}
	for _, tt := range tests {
		e, ok := FromLedger(tt.ev, nil)
		if ok != (tt.want != "") || e.Type != tt.want || ok && (e.Summary == "" || e.Actor != tt.ev.Actor) {
			t.Errorf("%s by %s: got %q (%v) %+v, want %q", tt.ev.Type, tt.ev.Actor, e.Type, ok, e, tt.want)
		}
	}
}
