package winrm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

// JITFORM_LOG=debug: one record per WS-Management request the real client
// sends (Create, Command, Send, Receive, Signal, Delete) with its HTTP status
// and duration; never the password, even when NTLM fails.
func TestDebugLogRecordsEveryRequest(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	for _, password := range []string{pass, "wrong-Dbg-7781"} {
		var logs strings.Builder
		c := &config.WinRMTarget{Address: host("web01"), HTTPS: true, CAFile: s.CAFile, Auth: config.WinRMAuthNTLM,
			User: user, Password: config.NewSecret(password), Timeout: 10 * time.Second}
		tg := &config.Target{Kind: "winrm", Name: "web", Key: host("web01"), Addr: `target.winrm.web["` + host("web01") + `"]`, WinRM: c}
		p, err := open(context.Background(), tg, providers.Options{Log: debuglog.New("debug", &logs)}, s.Dial)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
		p.Close()
		out := logs.String()
		if strings.Contains(out, password) {
			t.Fatalf("the password is in the debug log:\n%s", out)
		}
		want := []string{`msg="winrm request"`, `action=Create`, `ntlm_dials=`, `took=`}
		if password == pass {
			want = append(want, `action=Command`, `action=Send`, `action=Receive`, `status=200`, `result=ok`)
		} else {
			want = append(want, `status=401`, `result="HTTP 401"`)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("password %q: the debug log lacks %s:\n%s", password, w, out)
			}
		}
	}
}
