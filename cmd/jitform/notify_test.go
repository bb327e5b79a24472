package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/notify"
)

// TestNotifyFromGrantCommands: grant request, approve and break-glass POST
// signed notifications to a local receiver; a dead second endpoint neither
// fails nor hangs the commands.
func TestNotifyFromGrantCommands(t *testing.T) {
	const secret = "whsec-cmd-test-Zq9"
	t.Setenv("JITFORM_WEBHOOK_SECRET", secret)
	var mu sync.Mutex
	var got []notify.Payload
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		if !notify.Verify([]byte(secret), b, req.Header.Get(notify.SignatureHeader)) {
			t.Errorf("bad signature on %s", b)
		}
		var p notify.Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("payload: %v", err)
		}
		got = append(got, p)
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/gone"
	ln.Close()

	r := newGrantRepo(t)
	hcl := `
notify "webhook" "approvers" {
  url    = "` + srv.URL + `/hook"
  events = ["request", "approve", "break_glass"]
  secret = env("JITFORM_WEBHOOK_SECRET")
}
notify "webhook" "dead" {
  url    = "` + dead + `"
  secret = env("JITFORM_WEBHOOK_SECRET")
}
`
	if err := os.WriteFile(filepath.Join(r.dir, "notify.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id := r.request("alice", "--policy", "ops", "--duration", "2h", "--ticket", "CHG1042", "--reason", "patch IIS")
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("grant request took %s with a dead webhook", took)
	}
	_, stderr, code := r.as("carol", "grant", "approve", id)
	if code != 0 || !strings.Contains(stderr, "notify.webhook.dead") || !strings.Contains(stderr, "not delivered") {
		t.Errorf("approve: exit %d; the dead hook must be logged on stderr: %s", code, stderr)
	}
	r.request("alice", "--policy", "bg", "--duration", "30m", "--reason", "INC42 outage", "--break-glass")

	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, p := range got {
		types = append(types, p.Event.Type)
	}
	if strings.Join(types, ",") != "request,approve,break_glass" {
		t.Fatalf("the receiver got %q", types)
	}
	if got[0].Event.Grant != id || got[0].Event.Actor != "alice" || got[0].Event.Ticket != "CHG1042" ||
		got[1].Event.Actor != "carol" || got[1].Event.Principal != "alice" || got[1].Event.WindowEnd == nil {
		t.Errorf("events: %+v / %+v", got[0].Event, got[1].Event)
	}
	for _, b := range bodies {
		if strings.Contains(b, secret) {
			t.Errorf("the secret is in a payload: %s", b)
		}
	}
}
