package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format must be text or json"},
		{[]string{"--drift-interval", "0"}, "--drift-interval must be positive"},
		{[]string{"--drift-interval", "soon"}, "invalid argument"},
		{[]string{"extra"}, "run takes no arguments"},
		{[]string{"--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var out, errb bytes.Buffer
			a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
			code := a.main(context.Background(), append([]string{"-C", dir, "run"}, tt.args...))
			if code != exitError || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, errb.String(), tt.want)
			}
			// Bad flags change nothing: not even the state directory.
			if _, err := os.Stat(filepath.Join(dir, ".jitform")); err == nil {
				t.Error("bad flags created .jitform")
			}
		})
	}
}

// lineWatcher is stderr that tells when a line containing want is written.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// The quickstart through `jitform run`: one cycle applies the plan, the
// loop sleeps until the next window boundary, a signal (ctx) ends it with
// exit 0; JSON logs on stderr, nothing on stdout.
func TestRunQuickstartOneCycleThenSignal(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "quickstart")
	if err := copyDir(filepath.Join("..", "..", "examples", "quickstart"), dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWatcher{want: `"msg":"sleeping"`, seen: make(chan struct{})}
	var out bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: stderr, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- a.main(ctx, []string{"-C", dir, "run", "-log-format=json", "--drift-interval", "720h"})
	}()
	select {
	case <-stderr.seen:
	case code := <-done:
		t.Fatalf("run exited %d before sleeping:\n%s", code, stderr.buf.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no cycle within 20 s")
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d after the signal, want 0", code)
	}
	if out.Len() != 0 {
		t.Errorf("run wrote to stdout: %q", out.String())
	}
	msgs := map[string]int{}
	var sleep map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg]++
		if msg == "sleeping" {
			sleep = rec
		}
	}
	// The quickstart plan: 2 to add, 2 to remove.
	if msgs["change"] != 4 || msgs["cycle done"] != 1 || msgs["stopping"] != 1 {
		t.Errorf("log records = %v, want 4 changes, 1 cycle done, stopping", msgs)
	}
	if sleep["why"] != "next window boundary" {
		t.Errorf("slept for %v (%v), want until the next window boundary", sleep["for"], sleep["why"])
	}
	ldif, err := os.ReadFile(filepath.Join(dir, "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ldif), "uid=alice,ou=people,dc=example,dc=org") || strings.Contains(string(ldif), "member: uid=mallory") {
		t.Errorf("directory after the cycle:\n%s", ldif)
	}
}
