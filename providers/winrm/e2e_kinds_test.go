package winrm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// Through the orchestration the CLI uses: an exclusive right loses its
// orphaned SID holder and gains the grant's principal, the account is
// enabled with a rotated password, in one run per host per phase; after
// the window the right is removed and the account disabled.
func TestRightsAndAccountsThroughTheOperation(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.SetHolders(backup, svcBackup, orphan)
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), mustRead(t, s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := fmt.Sprintf(`
target "winrm" "web" {
  hosts    = [%q]
  ca_file  = "ca.pem"
  user     = "CORP\\svc-jitform"
  password = env("TEST_WINRM_PASSWORD")
}
right "web01_backup" {
  target    = target.winrm.web
  name      = "SeBackupPrivilege"
  members   = ["CORP\\svc-backup"]
  exclusive = true
}
account "web01_jitadmin" {
  target          = target.winrm.web
  name            = "jit-admin"
  rotate_password = true
}
actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbuvazf3bFf4fTWWF33HPyj+cwGqgp2l069iohYH3a8 alice"
}
policy "maint" {
  rights       = [right.web01_backup]
  accounts     = [account.web01_jitadmin]
  eligible     = ["CORP\\alice"]
  max_duration = "4h"
  approvers    = ["carol"]
}
grant "alice_chg1" {
  policy      = policy.maint
  principal   = "CORP\\alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  approved_by = ["carol"]
}
`, host("web01"))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_WINRM_PASSWORD", pass)
	backend, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	opts := operation.Options{
		Dir: dir, Now: func() time.Time { return now }, Parallelism: 2, Backend: backend,
		Registry: providers.Registry{"winrm": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
			return open(ctx, tg, o, s.Dial)
		}},
	}
	ctx := context.Background()
	plan, res, err := operation.PlanAndApply(ctx, opts)
	if err != nil || res.Failed() {
		t.Fatalf("first apply: %v %+v", err, res)
	}
	kinds := map[string]int{}
	for _, c := range plan.Changes {
		kinds[c.Kind+" "+c.Action]++
	}
	if want := map[string]int{"right add": 1, "right remove": 1, "account enable": 1}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("changes = %v, want %v", kinds, want)
	}
	if got := h.Holders(backup); !reflect.DeepEqual(got, []string{alice.ID, svcBackup}) {
		t.Errorf("holders = %v, want alice and svc-backup (the orphaned SID removed)", got)
	}
	u, _ := h.UserState("jit-admin")
	if u.Disabled || u.PasswordSets != 1 {
		t.Errorf("account after enable: %+v", u)
	}
	if n := len(h.ScheduledTasks()); n < 1 {
		t.Errorf("no switch for the right's grant")
	}
	// The password set on the host is in no ledger event.
	evs, err := backend.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if u.Password == "" || strings.Contains(string(ev.Payload), u.Password) {
			t.Errorf("the password is in ledger event %s", ev.Type)
		}
	}

	now = now.Add(30 * time.Minute)
	if plan, _, err := operation.PlanAndApply(ctx, opts); err != nil || len(plan.Changes) != 0 {
		t.Fatalf("a plan during the window: %v, %+v; want no change", err, plan.Changes)
	}

	now = time.Date(2026, 11, 23, 11, 0, 10, 0, time.UTC)
	plan, res, err = operation.PlanAndApply(ctx, opts)
	if err != nil || res.Failed() || len(plan.Changes) != 2 {
		t.Fatalf("after the window: %v, %+v", err, plan.Changes)
	}
	if got := h.Holders(backup); !reflect.DeepEqual(got, []string{svcBackup}) {
		t.Errorf("holders after the window = %v", got)
	}
	if u2, _ := h.UserState("jit-admin"); !u2.Disabled || u2.Password == u.Password {
		t.Errorf("account after the window: disabled %v, password rotated %v", u2.Disabled, u2.Password != u.Password)
	}
	evs, err = backend.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := state.Verify(evs); err != nil {
		t.Errorf("the ledger does not verify: %v", err)
	}
}
