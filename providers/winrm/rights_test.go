package winrm

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

const (
	backup    = "SeBackupPrivilege"
	svcBackup = "S-1-5-21-9-9-9-1106"
	orphan    = "S-1-5-21-9-9-9-4242" // a deleted domain account, still assigned the right
)

func right(name, constant string) *config.Group {
	return &config.Group{Name: name, Addr: "right." + name, BaseAddr: "right." + name, GroupName: constant, Kind: config.SetRight}
}

func statuses(outs []providers.Outcome) []providers.Status {
	var out []providers.Status
	for _, o := range outs {
		out = append(out, o.Status)
	}
	return out
}

func TestWinRMHandlesGroupsAndRights(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	p := openHost(t, s, "web01", nil)
	for _, k := range []string{config.SetGroup, config.SetRight} {
		if !providers.Supports(p, k) {
			t.Errorf("winrm does not declare %s", k)
		}
	}
	if providers.Supports(p, config.SetSudoRole) {
		t.Error("winrm declares sudo roles")
	}
}

// Rights and groups are read in the plan's one run and changed in the
// apply's one run; holders compare by SID (an orphaned SID is named by
// itself); each change is classified as for groups and verified by reading
// the holders again.
func TestRightsReadAndChangedInTheGroupsRun(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.SetHolders(backup, svcBackup, orphan)
	h.SetHolders("SeDebugPrivilege", bob.ID) // bob holds another right
	p := openHost(t, s, "web01", nil)
	ctx := context.Background()
	r := right("web01_backup", backup)
	obs, _, err := p.Observe(ctx, []*config.Group{grp("admins", adminSID), r}, []string{`CORP\alice`})
	if err != nil {
		t.Fatal(err)
	}
	if got := memberIDs(obs[r.Addr]); !reflect.DeepEqual(got, []string{svcBackup, orphan}) {
		t.Fatalf("holders = %v, want svc-backup and the orphaned SID", got)
	}
	for _, m := range obs[r.Addr].Members {
		if m.ID == orphan && m.Name != orphan {
			t.Errorf("the orphaned SID is named %q, want the SID itself", m.Name)
		}
	}
	if len(obs["group.admins"].Members) != 1 {
		t.Errorf("the group's members were not read in the same run: %+v", obs["group.admins"])
	}
	carol := "S-1-5-21-9-9-9-1199" // holds no right at all
	outs, err := p.Apply(ctx, []providers.GroupChange{
		{Group: grp("rdp", "S-1-5-32-555"), Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}},
		{Group: r, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: alice},                             // done
			{Action: providers.Add, Member: providers.Member{ID: svcBackup}},   // already held: already
			{Action: providers.Remove, Member: providers.Member{ID: orphan}},   // done: the orphan goes
			{Action: providers.Remove, Member: bob},                            // holds others, not this: already
			{Action: providers.Remove, Member: providers.Member{ID: carol}},    // holds none: STATUS_OBJECT_NAME_NOT_FOUND, already
			{Action: providers.Add, Member: providers.Member{ID: "not-a-sid"}}, // failed
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Status{providers.Done, providers.Done, providers.Already, providers.Done, providers.Already, providers.Already, providers.Failed}
	if got := statuses(outs); !reflect.DeepEqual(got, want) {
		for _, o := range outs {
			t.Logf("%s %s: %s %v", o.Change.Action, o.Change.Member.ID, o.Status, o.Err)
		}
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	if got := h.Holders(backup); !reflect.DeepEqual(got, []string{alice.ID, svcBackup}) {
		t.Errorf("holders after = %v", got)
	}
	if got := h.Holders("SeDebugPrivilege"); !reflect.DeepEqual(got, []string{bob.ID}) {
		t.Errorf("another right changed: %v", got)
	}
	if !slices.Contains(h.Members("S-1-5-32-555"), alice.ID) {
		t.Error("the group change of the same run was not made")
	}
	if n := len(h.RunsSeen()); n != 2 {
		t.Errorf("%d PowerShell runs, want 2 (one per phase)", n)
	}
}

// A write the LSA reports as done but that did not happen is caught by the
// re-read: failed, never done.
func TestRightReadAgainContradictsIsFailed(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.IneffectiveWrites = true
	p := openHost(t, s, "web01", nil)
	outs := applyOne(t, p, right("b", backup), providers.MemberChange{Action: providers.Add, Member: alice})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "read again") {
		t.Fatalf("add = %s %v, want failed by the re-read", outs[0].Status, outs[0].Err)
	}
}

// A name that is not a privilege or logon right: the read and the change
// fail with the LSA's status, nothing else on the host is touched.
func TestUnknownRightFailsWithTheLSAStatus(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	p := openHost(t, s, "web01", nil)
	r := right("x", "NotARight")
	obs, _, err := p.Observe(context.Background(), []*config.Group{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if obs[r.Addr].Err == nil || !strings.Contains(obs[r.Addr].Err.Error(), "0xC0000060") {
		t.Errorf("read = %v, want STATUS_NO_SUCH_PRIVILEGE", obs[r.Addr].Err)
	}
	outs := applyOne(t, p, r, providers.MemberChange{Action: providers.Add, Member: alice})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "0xC0000060") {
		t.Errorf("add = %s %v", outs[0].Status, outs[0].Err)
	}
}

// An add for a grant registers the right's switch before the right is
// added; the plan reads it as the holder's expiry; at the window end the
// host removes the right itself and deletes the task.
func TestRightSwitchRemovesTheRightAtWindowEnd(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	r := right("b", backup)
	outs := applyOne(t, p, r, grantAdd(alice, winEnd, "g1"))
	if outs[0].Status != providers.Done {
		t.Fatalf("add = %s %v", outs[0].Status, outs[0].Err)
	}
	tasks := h.ScheduledTasks()
	if len(tasks) != 1 {
		t.Fatalf("tasks = %v, want one", taskNames(tasks))
	}
	task := tasks[0]
	if task.Name != SwitchTaskName(backup, alice.ID) || task.Arguments != SwitchArguments || task.UserID != "S-1-5-18" {
		t.Errorf("task %s %q as %s", task.Name, clipTest(task.Arguments), task.UserID)
	}
	var d struct{ Right, Member, Grant string }
	if err := json.Unmarshal([]byte(task.Description), &d); err != nil || d.Right != backup || d.Member != alice.ID || d.Grant != "g1" {
		t.Errorf("description %q (%v)", task.Description, err)
	}
	obs, _, err := p.Observe(context.Background(), []*config.Group{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := obs[r.Addr].Members; len(m) != 1 || !m[0].Expires.Equal(winEnd.Add(SwitchGrace)) {
		t.Errorf("holders = %+v, want alice expiring at the switch", m)
	}
	sws, err := p.Switches(context.Background())
	if err != nil || len(sws) != 1 || sws[0].Member != alice.ID {
		t.Errorf("switches = %+v, %v", sws, err)
	}
	h.SetNow(winEnd.Add(SwitchGrace - 1))
	if len(h.Holders(backup)) != 1 {
		t.Fatal("the switch fired early")
	}
	h.SetNow(winEnd.Add(SwitchGrace))
	if got := h.Holders(backup); len(got) != 0 {
		t.Errorf("holders after the switch = %v", got)
	}
	if len(h.ScheduledTasks()) != 0 {
		t.Error("the switch's task stayed")
	}
	// jitform's own removal deletes the switch.
	outs = applyOne(t, p, r, grantAdd(alice, winEnd.Add(3600e9), "g2"))
	if outs[0].Status != providers.Done || len(h.ScheduledTasks()) != 1 {
		t.Fatalf("re-add = %s %v, tasks %d", outs[0].Status, outs[0].Err, len(h.ScheduledTasks()))
	}
	outs = applyOne(t, p, r, providers.MemberChange{Action: providers.Remove, Member: alice})
	if outs[0].Status != providers.Done || len(h.ScheduledTasks()) != 0 {
		t.Errorf("remove = %s %v, tasks %v", outs[0].Status, outs[0].Err, taskNames(h.ScheduledTasks()))
	}
}

// The process dies right after LsaAddAccountRights: the outcome is
// unknown, and the switch, registered first, is in place and removes the
// right at window end.
func TestRightCrashAfterTheAddKeepsTheSwitch(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.KillAfterWrites = 1
	p := openHost(t, s, "web01", nil)
	outs := applyOne(t, p, right("b", backup), grantAdd(alice, winEnd, "g1"))
	if outs[0].Status != providers.Unknown {
		t.Fatalf("add = %s %v, want unknown", outs[0].Status, outs[0].Err)
	}
	if !slices.Contains(h.Holders(backup), alice.ID) || len(h.ScheduledTasks()) != 1 {
		t.Fatalf("holders %v, tasks %d: the add and its switch should both be there", h.Holders(backup), len(h.ScheduledTasks()))
	}
	h.SetNow(winEnd.Add(SwitchGrace))
	if slices.Contains(h.Holders(backup), alice.ID) {
		t.Error("the switch did not remove the right after the crash")
	}
}

// Hostile right names and SIDs: the command line and the scripts are the
// embedded constants, byte for byte; the data arrives intact; nothing is
// granted.
func TestHostileRightNamesNeverChangeTheCode(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	hostile := []string{`'; Remove-Item C:\ -Recurse; '`, "\"$(Stop-Computer)\"", "Se`$x", "a'@\n'@b", "ünïcødé ☃", "\x00", strings.Repeat("A", 4096)}
	var rights []*config.Group
	var changes []providers.GroupChange
	for i, n := range hostile {
		r := right(fmt.Sprint("r", i), n)
		rights = append(rights, r)
		changes = append(changes, providers.GroupChange{Group: r, Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: n}}, {Action: providers.Add, Member: alice}}})
	}
	ctx := context.Background()
	if _, _, err := p.Observe(ctx, rights, nil); err != nil {
		t.Fatal(err)
	}
	outs, err := p.Apply(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Failed {
			t.Errorf("%s %q: %s, want failed", o.Group, clipTest(o.Change.Member.ID), o.Status)
		}
	}
	runs := h.RunsSeen()
	if len(runs) != 2 || runs[0].Script != ReadScript || runs[1].Script != ApplyScript {
		t.Fatal("the scripts sent are not the embedded constants")
	}
	for _, r := range runs {
		if r.CommandLine != CommandLine || r.Decoded != bootstrapPS {
			t.Error("the command line changed with the data")
		}
	}
	var got ReadRequest
	if err := json.Unmarshal([]byte(runs[0].Data), &got); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Rights {
		if r.Name != hostile[i] {
			t.Errorf("right %d arrived as %q", i, clipTest(r.Name))
		}
	}
	if len(h.Rights) != 0 {
		t.Errorf("rights granted: %v", h.Rights)
	}
}
