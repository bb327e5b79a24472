package main

import (
	"context"
	"encoding/json"
	"io"
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

// `jitform run` notifies the webhooks after a cycle: the quickstart's bob,
// whose window ended hours ago, is removed late (window_ended_late), and
// the POST is signed; no secret is in it.
func TestRunNotifiesAfterEachCycle(t *testing.T) {
	const secret = "whsec-run-test-7Hq"
	t.Setenv("JITFORM_RUN_TEST_SECRET", secret) // config's env() reads the process environment
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

	dir := filepath.Join(t.TempDir(), "quickstart")
	if err := copyDir(filepath.Join("..", "..", "examples", "quickstart"), dir); err != nil {
		t.Fatal(err)
	}
	hook := `
notify "webhook" "oncall" {
  url    = "` + srv.URL + `/hook"
  events = ["removal_failed", "window_ended_late"]
  secret = env("JITFORM_RUN_TEST_SECRET")
}
`
	if err := os.WriteFile(filepath.Join(dir, "notify.hcl"), []byte(hook), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWatcher{want: `"msg":"sleeping"`, seen: make(chan struct{})}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- a.main(ctx, []string{"-C", dir, "run", "-log-format=json", "--drift-interval", "720h"})
	}()
	select {
	case <-stderr.seen:
	case code := <-done:
		t.Fatalf("run exited %d before sleeping:\n%s", code, stderr.buf.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no cycle within 30 s:\n%s", stderr.buf.String())
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d after the signal", code)
	}
	mu.Lock()
	defer mu.Unlock()
	// Delivered before the loop slept: the notification is not left for later.
	if len(got) != 1 {
		t.Fatalf("the receiver got %d notification(s), want 1 (bob removed late):\n%s", len(got), strings.Join(bodies, "\n"))
	}
	ev := got[0].Event
	if ev.Type != "window_ended_late" || ev.Member != "uid=bob,ou=people,dc=example,dc=org" || ev.Grant != "grant.bob_chg1001" ||
		ev.LatencySeconds == nil || *ev.LatencySeconds < 2.9*3600 {
		t.Errorf("notification = %+v, want bob's removal about 3 h late", ev)
	}
	if strings.Contains(bodies[0], secret) {
		t.Errorf("the secret is in the payload: %s", bodies[0])
	}
}
