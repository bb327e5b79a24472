// Package notify delivers jitform's webhook notifications: signed JSON
// POSTs (or Slack incoming-webhook messages) when a grant is requested,
// approved, denied, revoked, when someone breaks glass, when a removal
// fails, and when a window's member was removed late.
//
// Delivery never blocks or fails the command that triggered it: every
// delivery shares one bounded wait (Budget), failed attempts are retried
// with backoff inside it, and what could not be delivered is logged and
// counted, never returned as an error.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jitform/jitform/config"
)

// FormatVersion is the version of the JSON payload (docs/report.md).
const FormatVersion = "1.0"

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// keyed with the block's secret, like GitHub's X-Hub-Signature-256.
const SignatureHeader = "X-Jitform-Signature-256"

// Event is one thing worth telling people about. Only these fields are
// sent: nothing from the configuration's secrets can reach a payload.
type Event struct {
	Type      string    `json:"type"` // config.Notify* event name
	Time      time.Time `json:"time"`
	Summary   string    `json:"summary"` // one sentence for people
	Grant     string    `json:"grant,omitempty"`
	Policy    string    `json:"policy,omitempty"`
	Principal string    `json:"principal,omitempty"`
	Actor     string    `json:"actor,omitempty"` // who did it (requester, approver)
	Group     string    `json:"group,omitempty"`
	Member    string    `json:"member,omitempty"`
	Ticket    string    `json:"ticket,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Window: when the grant's window starts and ends (request, approve,
	// break_glass), or when it ended (window_ended_late).
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`
	// LatencySeconds: window_ended_late, from the window's end to the removal.
	LatencySeconds *float64 `json:"latency_seconds,omitempty"`
	Error          string   `json:"error,omitempty"` // removal_failed
	LedgerSeq      int64    `json:"ledger_seq,omitempty"`
}

// Payload is the JSON body of a format = "json" delivery.
type Payload struct {
	FormatVersion string `json:"format_version"`
	Source        string `json:"source"` // "jitform"
	Delivery      string `json:"delivery"`
	Hook          string `json:"hook"` // notify.webhook.NAME
	Event         Event  `json:"event"`
}

// Defaults of a Notifier.
const (
	DefaultBudget   = 5 * time.Second
	DefaultAttempts = 4
	DefaultBackoff  = 250 * time.Millisecond
)

// Notifier delivers events to the configured hooks.
type Notifier struct {
	Hooks []*config.Notify
	// Client sends the requests; nil: a client without redirects.
	Client *http.Client
	// Budget bounds the whole Notify call (0: DefaultBudget); Attempts per
	// delivery (0: DefaultAttempts); Backoff is the first retry's delay,
	// doubled each time (0: DefaultBackoff).
	Budget   time.Duration
	Attempts int
	Backoff  time.Duration
	// Log receives one line per failed delivery (nil: discarded). Lines
	// name the hook and host, never the URL's path or the secret.
	Log func(format string, args ...any)
}

// Result counts one Notify call's deliveries.
type Result struct {
	Delivered int
	Failed    int // gave up: attempts used up, a 4xx, or the budget ran out
	Attempts  int // HTTP requests made, retries included
}

// Notify delivers every event to every hook that subscribes to it, in
// parallel, and returns when all are done or the budget is spent, whichever
// comes first. It never fails: failures are logged and counted.
func (n *Notifier) Notify(ctx context.Context, events ...Event) Result {
	var res Result
	if n == nil || len(n.Hooks) == 0 || len(events) == 0 {
		return res
	}
	budget := n.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	// The triggering command's cancellation does not cut deliveries short
	// (its work is done), but the budget always does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range n.Hooks {
		for _, ev := range events {
			if !h.Wants(ev.Type) {
				continue
			}
			wg.Go(func() {
				ok, attempts, err := n.deliver(ctx, h, ev)
				mu.Lock()
				defer mu.Unlock()
				res.Attempts += attempts
				if ok {
					res.Delivered++
					return
				}
				res.Failed++
				n.logf("notify: %s (%s): %s event not delivered after %d attempt(s): %v", h.Addr, h.Host, ev.Type, attempts, err)
			})
		}
	}
	wg.Wait()
	return res
}

func (n *Notifier) logf(format string, args ...any) {
	if n.Log != nil {
		n.Log(format, args...)
	}
}

func (n *Notifier) client() *http.Client {
	if n.Client != nil {
		return n.Client
	}
	return &http.Client{
		// A redirect could carry the signed body somewhere else: refuse.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Body renders the request body for a hook: the JSON payload, or a Slack
// message.
func Body(h *config.Notify, ev Event, delivery string) ([]byte, error) {
	if h.Format == config.NotifyFormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{SlackText(ev)})
	}
	return json.Marshal(Payload{FormatVersion: FormatVersion, Source: "jitform", Delivery: delivery, Hook: h.Addr, Event: ev})
}

// SlackText is the message a Slack channel shows.
func SlackText(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*jitform %s*: %s", strings.ReplaceAll(ev.Type, "_", " "), ev.Summary)
	var details []string
	for _, kv := range [][2]string{{"grant", ev.Grant}, {"policy", ev.Policy}, {"ticket", ev.Ticket}, {"group", ev.Group}} {
		if kv[1] != "" {
			details = append(details, kv[0]+" "+kv[1])
		}
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	return b.String()
}

// Sign returns the signature header value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header value against body, in constant time:
// what a receiver does.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// deliver POSTs one event to one hook, retrying transport errors, 429 and
// 5xx with doubling backoff, until success, a permanent failure, the last
// attempt or the end of the budget.
func (n *Notifier) deliver(ctx context.Context, h *config.Notify, ev Event) (ok bool, attempts int, err error) {
	delivery := newDeliveryID()
	body, err := Body(h, ev, delivery)
	if err != nil {
		return false, 0, fmt.Errorf("encode the payload: %w", err)
	}
	max := n.Attempts
	if max <= 0 {
		max = DefaultAttempts
	}
	backoff := n.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	for attempts < max {
		attempts++
		retry, err := n.post(ctx, h, body, ev.Type, delivery)
		if err == nil {
			return true, attempts, nil
		}
		if !retry || attempts == max {
			return false, attempts, err
		}
		select {
		case <-ctx.Done():
			return false, attempts, fmt.Errorf("%w (then the %s notification budget ran out)", err, n.budget())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return false, attempts, err
}

func (n *Notifier) budget() time.Duration {
	if n.Budget > 0 {
		return n.Budget
	}
	return DefaultBudget
}

// post makes one attempt. retry says whether another may succeed.
func (n *Notifier) post(ctx context.Context, h *config.Notify, body []byte, typ, delivery string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build the request: %s", redact(err, h))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jitform-webhook/"+FormatVersion)
	req.Header.Set("X-Jitform-Event", typ)
	req.Header.Set("X-Jitform-Delivery", delivery)
	if h.Secret.IsSet() {
		req.Header.Set(SignatureHeader, Sign([]byte(h.Secret.Reveal()), body))
	}
	resp, err := n.client().Do(req)
	if err != nil {
		return true, fmt.Errorf("%s", redact(err, h))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return false, fmt.Errorf("HTTP %s (not retried)", resp.Status)
	}
}

// redact removes the hook's URL from an error: net/http quotes it, and a
// Slack webhook URL is a credential.
func redact(err error, h *config.Notify) string {
	s := err.Error()
	if u := h.URL.Reveal(); u != "" {
		s = strings.ReplaceAll(s, u, h.Addr+" ("+h.Host+")")
		s = strings.ReplaceAll(s, fmt.Sprintf("%q", u), h.Addr+" ("+h.Host+")")
	}
	if sec := h.Secret.Reveal(); len(sec) >= 4 {
		s = strings.ReplaceAll(s, sec, "(sensitive)")
	}
	return s
}

func newDeliveryID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "unknown"
	}
	return hex.EncodeToString(b[:])
}
