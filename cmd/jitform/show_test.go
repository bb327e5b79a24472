package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/winrm"
)

const (
	showUser = `CORP\svc-jitform`
	showPass = "winrm-Show-Secret-88"
)

// TestShowListsPendingSwitchesPerHost: without a plan file, show lists the
// dead-man's switches each Windows host holds (read from the host, not the
// ledger), and a host that cannot be asked is listed with its error.
func TestShowListsPendingSwitchesPerHost(t *testing.T) {
	s := winrmtest.New(t, showUser, showPass, "127.0.0.1")
	_, port, _ := net.SplitHostPort(s.Addr)
	dir := t.TempDir()
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := fmt.Sprintf(`
target "winrm" "web" {
  address  = "127.0.0.1"
  port     = %s
  ca_file  = "ca.pem"
  user     = "CORP\\svc-jitform"
  password = env("TEST_SHOW_WINRM_PASSWORD")
  timeout  = "10s"
}
target "winrm" "down" {
  address  = "127.0.0.1"
  port     = 1
  ca_file  = "ca.pem"
  user     = "CORP\\svc-jitform"
  password = env("TEST_SHOW_WINRM_PASSWORD")
  timeout  = "3s"
}
group "web_admins" {
  target = target.winrm.web
  name   = "S-1-5-32-544"
}
`, port)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SHOW_WINRM_PASSWORD", showPass)

	// jitform adds alice for a grant ending at 11:00: the host holds her
	// switch for 11:01.
	cfg, diags := config.Load(dir, config.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p, err := winrm.Open(context.Background(), cfg.TargetByAddr("target.winrm.web"), providers.Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	end := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: cfg.Groups[0], Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: "S-1-5-21-9-9-9-1104", Expires: end, Grant: "grant.alice_chg1"}}}}})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("add: %+v %v", outs, err)
	}

	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := a.main(context.Background(), []string{"-C", dir, "show"}); code != exitOK {
		t.Fatalf("show exited %d: %s", code, errb.String())
	}
	name := `\jitform\` + winrm.SwitchTaskName("S-1-5-32-544", "S-1-5-21-9-9-9-1104")
	for _, want := range []string{
		"Dead-man's switches pending on Windows hosts",
		"127.0.0.1 (target.winrm.web)",
		name + "  fires 2026-11-23T11:01:00Z  removes S-1-5-21-9-9-9-1104 from S-1-5-32-544  (grant.alice_chg1)",
		"127.0.0.1 (target.winrm.down)\n  could not list:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show does not say %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), showPass) {
		t.Error("the password is shown")
	}

	out.Reset()
	if code := a.main(context.Background(), []string{"-C", dir, "show", "--json"}); code != exitOK {
		t.Fatalf("show --json exited %d: %s", code, errb.String())
	}
	var got struct {
		Switches []hostSwitches `json:"switches"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Switches) != 2 || len(got.Switches[0].Switches) != 1 || got.Switches[1].Error == "" {
		t.Fatalf("switches = %+v", got.Switches)
	}
	sw := got.Switches[0].Switches[0]
	if sw.Name != name || !sw.At.Equal(end.Add(winrm.SwitchGrace)) || sw.Member != "S-1-5-21-9-9-9-1104" || sw.Group != "S-1-5-32-544" || sw.Grant != "grant.alice_chg1" {
		t.Errorf("switch = %+v", sw)
	}
}
