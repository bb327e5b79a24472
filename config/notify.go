package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Notification events a notify block may subscribe to.
const (
	NotifyRequest         = "request"
	NotifyApprove         = "approve"
	NotifyDeny            = "deny"
	NotifyRevoke          = "revoke"
	NotifyBreakGlass      = "break_glass"
	NotifyRemovalFailed   = "removal_failed"
	NotifyWindowEndedLate = "window_ended_late"
)

// NotifyEvents lists every event, in the order the docs give them.
var NotifyEvents = []string{NotifyRequest, NotifyApprove, NotifyDeny, NotifyRevoke, NotifyBreakGlass, NotifyRemovalFailed, NotifyWindowEndedLate}

// Notify formats.
const (
	NotifyFormatJSON  = "json"  // jitform's own signed JSON (docs/report.md)
	NotifyFormatSlack = "slack" // a Slack incoming-webhook message: {"text": ...}
)

// Notify is a notify "webhook" block: signed JSON POSTs when something an
// approver or auditor must know happens.
type Notify struct {
	Kind string // "webhook"
	Name string
	Addr string // notify.webhook.NAME
	// URL is secret: a Slack webhook URL carries its token. Host is what
	// logs name.
	URL    Secret
	Host   string
	Events []string // subscribed events; all when the block lists none
	Secret Secret   // HMAC-SHA256 key; unset: requests are not signed (slack only)
	Format string   // NotifyFormatJSON or NotifyFormatSlack

	DeclRange hcl.Range
}

// Wants reports whether the block subscribes to event.
func (n *Notify) Wants(event string) bool { return slices.Contains(n.Events, event) }

// url and secret are secret attributes: like a password, they may come
// from env() and are then read when a notification is sent.
type notifyHCL struct {
	URL    hcl.Expression `hcl:"url"`
	Events []string       `hcl:"events,optional"`
	Secret hcl.Expression `hcl:"secret,optional"`
	Format string         `hcl:"format,optional"`
}

func (l *loader) notify(b *hcl.Block) {
	kind, name := b.Labels[0], b.Labels[1]
	addr := "notify." + kind + "." + name
	if kind != "webhook" {
		l.errorf(b.LabelRanges[0].Ptr(), "Unknown notify kind",
			"%q is not a notify kind%s; the only kind is \"webhook\".", kind, suggest(kind, []string{"webhook"}))
		return
	}
	var prev *declared
	for _, n := range l.cfg.Notify {
		if n.Addr == addr {
			prev = &declared{decl: n.DeclRange}
		}
	}
	if !l.checkName(b, 1, prev, addr) {
		return
	}
	var raw notifyHCL
	diags := gohcl.DecodeBody(guardBodyAllowing(b.Body, "url", "secret"), l.ctx, &raw)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return
	}
	at := attrsOf(b)
	// gohcl never reports a missing hcl.Expression.
	if !l.require(b, at, "url", "the webhook's address, e.g. url = env(\"JITFORM_WEBHOOK_URL\") or \"https://hooks.example/jitform\"") {
		return
	}
	n := &Notify{Kind: kind, Name: name, Addr: addr, Format: raw.Format, DeclRange: b.DefRange}
	bad := false

	urlSecret, udiags := l.secret("url", raw.URL)
	l.diags = append(l.diags, udiags...)
	bad = bad || udiags.HasErrors()
	if !udiags.HasErrors() && urlSecret.d != nil {
		// From env(): checked when a notification is sent.
		n.URL, n.Host = urlSecret, "(url from env)"
	} else if !udiags.HasErrors() {
		u, err := url.Parse(urlSecret.Reveal())
		switch {
		case err != nil:
			// url.Parse quotes the URL in its error; name only the problem.
			l.diags = append(l.diags, at.errAt("url", "Invalid webhook URL", "url does not parse as a URL."))
			bad = true
		case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
			l.diags = append(l.diags, at.errAt("url", "Invalid webhook URL",
				"url must be an absolute http:// or https:// URL, like \"https://hooks.example/jitform\"."))
			bad = true
		default:
			n.URL, n.Host = urlSecret, u.Host
		}
	}

	switch n.Format {
	case "":
		n.Format = NotifyFormatJSON
	case NotifyFormatJSON, NotifyFormatSlack:
	default:
		l.diags = append(l.diags, at.errAt("format", "Unknown notify format",
			fmt.Sprintf("format must be %q (the default) or %q%s.", NotifyFormatJSON, NotifyFormatSlack,
				suggest(n.Format, []string{NotifyFormatJSON, NotifyFormatSlack}))))
		bad = true
	}

	if at.has("secret") {
		sec, sdiags := l.secret("secret", raw.Secret)
		l.diags = append(l.diags, sdiags...)
		switch {
		case sdiags.HasErrors():
			bad = true
		case sec.d == nil && strings.TrimSpace(sec.Reveal()) == "":
			l.diags = append(l.diags, at.errAt("secret", "Empty webhook secret",
				"secret is empty: set it with env(\"JITFORM_WEBHOOK_SECRET\") and give the variable a value, or leave secret out (format = \"slack\" only)."))
			bad = true
		default:
			n.Secret = sec
		}
	} else if n.Format == NotifyFormatJSON {
		l.diags = append(l.diags, at.errAt("url", "Missing webhook secret",
			"a JSON webhook is signed: add secret = env(\"JITFORM_WEBHOOK_SECRET\"), so the receiver can check that jitform sent it."))
		bad = true
	}

	if at.has("events") {
		if len(raw.Events) == 0 {
			l.diags = append(l.diags, at.errAt("events", "No notify events",
				"events is empty; list some of "+strings.Join(NotifyEvents, ", ")+", or leave events out for all of them."))
			bad = true
		}
		for _, e := range raw.Events {
			if !slices.Contains(NotifyEvents, e) {
				l.diags = append(l.diags, at.errAt("events", "Unknown notify event",
					fmt.Sprintf("%q is not an event%s; the events are %s.", e, suggest(e, NotifyEvents), strings.Join(NotifyEvents, ", "))))
				bad = true
			} else if !slices.Contains(n.Events, e) {
				n.Events = append(n.Events, e)
			}
		}
	} else {
		n.Events = append([]string(nil), NotifyEvents...)
	}
	if bad {
		return
	}
	l.cfg.Notify = append(l.cfg.Notify, n)
}
