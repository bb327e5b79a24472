package planner

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/tools/txtar"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

var update = flag.Bool("update", false, "rewrite the expected plans in testdata/scenarios")

// scenarioDir holds one txtar file per planner rule, named for what it
// proves. Sections:
//
//	now               the plan time (RFC 3339)
//	*.hcl             the policy repository
//	observed.txt      "group.ADDR: ID | name" per member; "group.ADDR:" for an
//	                  empty group; "group.ADDR ! error" for an unreadable one;
//	                  a group not listed was not read
//	resolved.txt      "target.ADDR principal: ID | name", or
//	                  "target.ADDR principal ! error" for an unknown principal
//	accounts.txt      "account.ADDR: enabled", "account.ADDR: disabled",
//	                  "account.ADDR: missing" (does not exist), or
//	                  "account.ADDR ! error"; an account not listed was not read;
//	                  ephemeral: "account.ADDR: base" (its base exists), then
//	                  "account.ADDR instance: DN | GRANT | enabled|disabled"
//	ingroup.txt       "target.ADDR group:DN principal" (directory group eligibility)
//	ledger.jsonl      ledger events (change_intent, change_applied, ...)
//	ledger_grants.json grants as the grant workflow derives them from the
//	                  ledger (a JSON list of planner.Grant), appended to the view
//	revoked.txt       "grant.NAME TIME": repository grants revoked in the ledger
//	plan.txt          expected RenderText output (golden; -update rewrites it)
//	plan.json         expected RenderJSON output, when present (golden)
const scenarioDir = "../testdata/scenarios"

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scenarioDir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenarios in %s", scenarioDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, file)
		})
	}
}

func runScenario(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	in, err := scenarioInput(ar)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	plan, err := Compute(in)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	// The same input must give the same plan, byte for byte.
	again, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != plan.ID {
		t.Errorf("plan ID not deterministic: %s then %s", plan.ID, again.ID)
	}

	var text, js bytes.Buffer
	if err := RenderText(&text, plan, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&js, plan); err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{"plan.txt": text.Bytes(), "plan.json": js.Bytes()}

	changed := false
	for _, section := range []string{"plan.txt", "plan.json"} {
		i := sectionIndex(ar, section)
		if i < 0 {
			if section == "plan.txt" {
				if *update {
					ar.Files = append(ar.Files, txtar.File{Name: section, Data: got[section]})
					changed = true
					continue
				}
				t.Errorf("%s has no plan.txt section; run go test ./planner -run TestScenarios -update", file)
			}
			continue
		}
		if !bytes.Equal(ar.Files[i].Data, got[section]) {
			if *update {
				ar.Files[i].Data = got[section]
				changed = true
				continue
			}
			t.Errorf("%s differs from %s (run with -update to accept)\n--- got ---\n%s\n--- want ---\n%s",
				section, file, got[section], ar.Files[i].Data)
		}
	}
	if changed {
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sectionIndex(ar *txtar.Archive, name string) int {
	for i, f := range ar.Files {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// scenarioInput builds the planner input a scenario describes, as
// internal/operation would from real targets and the real ledger.
func scenarioInput(ar *txtar.Archive) (Input, error) {
	sections := map[string][]byte{}
	hclFiles := map[string][]byte{}
	for _, f := range ar.Files {
		sections[f.Name] = f.Data
		if strings.HasSuffix(f.Name, ".hcl") {
			hclFiles[f.Name] = f.Data
		}
	}
	now, err := time.Parse(time.RFC3339, strings.TrimSpace(string(sections["now"])))
	if err != nil {
		return Input{}, fmt.Errorf("section now: %w", err)
	}
	cfg, diags := config.LoadFiles("scenario", hclFiles, config.LoadOptions{PlanTime: now})
	if diags.HasErrors() {
		return Input{}, fmt.Errorf("config: %s", diagsText(diags))
	}
	in := Input{
		Config:   cfg,
		Now:      now,
		Observed: map[string]providers.Observation{},
		Resolved: map[string]map[string]providers.Resolution{},
		InGroup:  map[string]map[string]map[string]bool{},
	}
	if err := eachLine(sections["observed.txt"], func(line string) error {
		if addr, msg, ok := strings.Cut(line, " ! "); ok {
			in.Observed[strings.TrimSpace(addr)] = providers.Observation{Err: errors.New(msg)}
			return nil
		}
		addr, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("want 'group.ADDR: ID | name'")
		}
		o := in.Observed[addr]
		if o.Members == nil {
			o.Members = []providers.Member{}
		}
		if rest = strings.TrimSpace(rest); rest != "" {
			o.Members = append(o.Members, member(rest))
		}
		in.Observed[addr] = o
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("observed.txt: %w", err)
	}
	in.Accounts = map[string]providers.AccountState{}
	if err := eachLine(sections["accounts.txt"], func(line string) error {
		if addr, msg, ok := strings.Cut(line, " ! "); ok {
			in.Accounts[strings.TrimSpace(addr)] = providers.AccountState{Err: errors.New(msg)}
			return nil
		}
		if addr, rest, ok := strings.Cut(line, " instance: "); ok {
			// An ephemeral account found under its base: DN | GRANT | enabled|disabled.
			f := strings.Split(rest, " | ")
			if len(f) != 3 {
				return fmt.Errorf("want 'account.ADDR instance: DN | GRANT | enabled|disabled'")
			}
			id, err := dn.Canonical(f[0])
			if err != nil {
				return err
			}
			name, _ := dn.FirstValue(f[0])
			st := in.Accounts[addr]
			st.Instances = append(st.Instances, providers.Instance{Name: name, DN: f[0], Grant: f[1], Enabled: f[2] == "enabled", Member: providers.Member{ID: id, Name: f[0]}})
			in.Accounts[addr] = st
			return nil
		}
		addr, st, ok := strings.Cut(line, ": ")
		switch st = strings.TrimSpace(st); {
		case !ok:
			return fmt.Errorf("want 'account.ADDR: enabled|disabled|missing|base'")
		case st == "base":
			// An ephemeral account's base exists (instances follow).
			in.Accounts[addr] = providers.AccountState{Exists: true}
		case st == "enabled":
			in.Accounts[addr] = providers.AccountState{Exists: true, Enabled: true}
		case st == "disabled":
			in.Accounts[addr] = providers.AccountState{Exists: true}
		case st == "missing":
			in.Accounts[addr] = providers.AccountState{}
		default:
			return fmt.Errorf("unknown account state %q", st)
		}
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("accounts.txt: %w", err)
	}
	if err := eachLine(sections["resolved.txt"], func(line string) error {
		target, rest, ok := strings.Cut(line, " ")
		if !ok {
			return fmt.Errorf("want 'target.ADDR principal: ID | name'")
		}
		if in.Resolved[target] == nil {
			in.Resolved[target] = map[string]providers.Resolution{}
		}
		if principal, msg, ok := strings.Cut(rest, " ! "); ok {
			in.Resolved[target][principal] = providers.Resolution{Err: errors.New(msg)}
			return nil
		}
		// Principals may contain ":" (none of ours do before ": ").
		principal, id, ok := strings.Cut(rest, ": ")
		if !ok {
			return fmt.Errorf("want 'target.ADDR principal: ID | name'")
		}
		in.Resolved[target][principal] = providers.Resolution{Member: member(id)}
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("resolved.txt: %w", err)
	}
	if err := eachLine(sections["ingroup.txt"], func(line string) error {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("want 'target.ADDR group:DN principal'")
		}
		if in.InGroup[f[0]] == nil {
			in.InGroup[f[0]] = map[string]map[string]bool{}
		}
		if in.InGroup[f[0]][f[1]] == nil {
			in.InGroup[f[0]][f[1]] = map[string]bool{}
		}
		in.InGroup[f[0]][f[1]][f[2]] = true
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("ingroup.txt: %w", err)
	}
	var events []state.Event
	if err := eachLine(sections["ledger.jsonl"], func(line string) error {
		var ev state.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return err
		}
		events = append(events, ev)
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("ledger.jsonl: %w", err)
	}
	view, _ := Replay(cfg, events, now)
	if b := sections["ledger_grants.json"]; len(bytes.TrimSpace(b)) > 0 {
		var gs []Grant
		if err := json.Unmarshal(b, &gs); err != nil {
			return Input{}, fmt.Errorf("ledger_grants.json: %w", err)
		}
		view.Grants = append(view.Grants, gs...)
	}
	if err := eachLine(sections["revoked.txt"], func(line string) error {
		name, at, _ := strings.Cut(line, " ")
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(at))
		if err != nil {
			return err
		}
		view.RevokedRepo[name] = t
		return nil
	}); err != nil {
		return Input{}, fmt.Errorf("revoked.txt: %w", err)
	}
	in.Ledger = view
	if len(events) > 0 {
		in.LedgerHead = events[len(events)-1].Hash
	}
	return in, nil
}

func member(s string) providers.Member {
	id, name, _ := strings.Cut(s, "|")
	return providers.Member{ID: strings.TrimSpace(id), Name: strings.TrimSpace(name)}
}

func eachLine(b []byte, f func(string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := f(line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func diagsText(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		parts = append(parts, d.Error())
	}
	return strings.Join(parts, "\n")
}
