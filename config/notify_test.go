package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const testWebhookSecret = "whsec-Zq9-never-printed"

func loadNotify(t *testing.T, src string) (*Config, string) {
	t.Helper()
	opts := testOptions()
	opts.LookupEnv = func(name string) (string, bool) {
		switch name {
		case "JITFORM_WEBHOOK_SECRET":
			return testWebhookSecret, true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	cfg, diags := LoadFiles("repo", map[string][]byte{"notify.hcl": []byte(src)}, opts)
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "%s: %s: %s\n", d.Subject, d.Summary, d.Detail)
	}
	return cfg, b.String()
}

func TestNotifyBlockDecodes(t *testing.T) {
	cfg, diags := loadNotify(t, `
notify "webhook" "approvers" {
  url    = "https://hooks.example/jitform/T0KEN"
  events = ["request", "approve", "break_glass"]
  secret = env("JITFORM_WEBHOOK_SECRET")
}
notify "webhook" "chat" {
  url    = "https://hooks.slack.example/services/T0/B0/XYZ"
  format = "slack"
}
`)
	if diags != "" {
		t.Fatalf("unexpected diagnostics:\n%s", diags)
	}
	if len(cfg.Notify) != 2 {
		t.Fatalf("want 2 notify blocks, got %d", len(cfg.Notify))
	}
	a, c := cfg.Notify[0], cfg.Notify[1]
	if a.Addr != "notify.webhook.approvers" || a.Host != "hooks.example" || a.Format != NotifyFormatJSON ||
		a.Secret.Reveal() != testWebhookSecret || !slices.Equal(a.Events, []string{"request", "approve", "break_glass"}) {
		t.Errorf("approvers: %+v", a)
	}
	if c.Format != NotifyFormatSlack || c.Secret.IsSet() || !slices.Equal(c.Events, NotifyEvents) {
		t.Errorf("a block without events gets every event, slack needs no secret: %+v", c)
	}
	// Neither the URL (a Slack URL is a credential) nor the secret prints.
	if s := fmt.Sprintf("%v %+v", a, c); strings.Contains(s, testWebhookSecret) || strings.Contains(s, "T0KEN") || strings.Contains(s, "XYZ") {
		t.Errorf("a notify block prints a secret: %s", s)
	}
}

// TestNotifyBlockErrors: bad input names file:line and the field, and no
// secret appears in any diagnostic.
func TestNotifyBlockErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown kind", `notify "email" "x" { url = "https://h/x" }`, `notify.hcl:1,8-15: Unknown notify kind`},
		{"url not http", `notify "webhook" "x" {
  url = "ftp://h/x"
  secret = env("JITFORM_WEBHOOK_SECRET")
}`, `notify.hcl:2,9-20: Invalid webhook URL`},
		{"json needs a secret", `notify "webhook" "x" { url = "https://h/x" }`, `Missing webhook secret`},
		// An env() secret is read when a notification is sent (like a
		// password when a target opens); a literal empty one is refused now.
		{"empty secret", `notify "webhook" "x" {
  url = "https://h/x"
  secret = ""
}`, `notify.hcl:3,12-14: Empty webhook secret`},
		{"unknown event", `notify "webhook" "x" {
  url = "https://h/x"
  secret = env("JITFORM_WEBHOOK_SECRET")
  events = ["request", "aprove"]
}`, `notify.hcl:4,12-33: Unknown notify event: "aprove" is not an event (did you mean "approve"?)`},
		{"unknown format", `notify "webhook" "x" {
  url = "https://h/x"
  format = "slak"
}`, `notify.hcl:3,12-18: Unknown notify format`},
		{"duplicate", `notify "webhook" "x" {
  url = "https://h/x"
  format = "slack"
}
notify "webhook" "x" {
  url = "https://h/y"
  format = "slack"
}`, `Duplicate notify: notify.webhook.x is already declared`},
		{"missing url", `notify "webhook" "x" { format = "slack" }`, `Missing required argument`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := loadNotify(t, tt.body)
			if !strings.Contains(diags, tt.want) {
				t.Errorf("diagnostics lack %q:\n%s", tt.want, diags)
			}
			if strings.Contains(diags, testWebhookSecret) {
				t.Errorf("a diagnostic shows the secret:\n%s", diags)
			}
			if tt.name != "duplicate" && len(cfg.Notify) != 0 {
				t.Errorf("a bad block must not be configured: %+v", cfg.Notify)
			}
		})
	}
}
