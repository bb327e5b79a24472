package ldif

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// TestApplyNeverHalfWrites covers the ways Apply must leave the file as it
// was: a value the encoder cannot round-trip, a file that became
// malformed after Open, a directory that cannot take the temp file.
func TestApplyNeverHalfWrites(t *testing.T) {
	t.Parallel()
	admins := group("admins", "cn=admins,ou=groups,dc=example,dc=org")
	changes := []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{add(bob)}}}

	t.Run("value the encoder cannot round-trip", func(t *testing.T) {
		t.Parallel()
		tg, path := openCopy(t, "openldap.ldif", "")
		// A legal value with a leading space in the group being changed:
		// go-ldap/ldif writes it unencoded and the space is lost on
		// reading back.
		b, _ := os.ReadFile(path)
		b = bytes.Replace(b, []byte("description: keep me"), []byte("description:: "+base64.StdEncoding.EncodeToString([]byte(" keep me"))), 1)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		outs, err := tg.Apply(context.Background(), changes)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 || outs[0].Status != providers.Failed || outs[0].Err == nil ||
			!strings.Contains(outs[0].Err.Error(), "cannot round-trip") || !strings.Contains(outs[0].Err.Error(), "nothing written") {
			t.Fatalf("outcomes %+v, want one failure saying the encoder cannot round-trip", outs)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
			t.Fatal("file changed")
		}
	})

	t.Run("file malformed since Open", func(t *testing.T) {
		t.Parallel()
		tg, path := openCopy(t, "openldap.ldif", "")
		bad := []byte("dn: dc=x\nbroken line\n")
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := tg.Apply(context.Background(), changes)
		if err == nil || !strings.Contains(err.Error(), path+":1:") {
			t.Fatalf("Apply error %v, want one naming %s:1", err, path)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
			t.Fatal("file changed")
		}
	})

	t.Run("temp file cannot be created", func(t *testing.T) {
		t.Parallel()
		renamed, err := writeAtomic(filepath.Join(t.TempDir(), "gone", "dir.ldif"), []byte("x"))
		if err == nil || renamed {
			t.Fatalf("writeAtomic into a missing directory: renamed=%v err=%v", renamed, err)
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		t.Parallel()
		tg, path := openCopy(t, "openldap.ldif", "")
		before, _ := os.ReadFile(path)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tg.Apply(ctx, changes); !errors.Is(err, context.Canceled) {
			t.Fatalf("Apply on a canceled context: %v", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
			t.Fatal("file changed")
		}
	})
}

// TestApplySeesEditsSinceOpen: Apply works on the file as it is now, so an
// edit made after Read is neither lost nor applied twice.
func TestApplySeesEditsSinceOpen(t *testing.T) {
	t.Parallel()
	tg, path := openCopy(t, "openldap.ldif", "")
	b, _ := os.ReadFile(path)
	edited := bytes.Replace(b, []byte("description: keep me\n"), []byte("description: keep me\nmember: uid=bob,ou=people,dc=example,dc=org\n"), 1)
	edited = append(edited, []byte("\ndn: cn=late,dc=example,dc=org\nobjectClass: organizationalRole\ncn: late\n")...)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	admins := group("admins", "cn=admins,ou=groups,dc=example,dc=org")
	outs, err := tg.Apply(context.Background(), []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{add(bob), remove(alice)}}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Already || outs[1].Status != providers.Done {
		t.Fatalf("outcomes %+v, want already then done", outs)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Contains(after, []byte("dn: cn=late,dc=example,dc=org")) {
		t.Fatal("an entry added after Open was lost")
	}
	if bytes.Count(after, []byte("member: uid=bob,")) != 1 {
		t.Fatalf("bob should be a member once:\n%s", after)
	}
}

// TestQuickstart plans nothing itself but checks the shipped example
// directory resolves and reads as the example's comments say.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	src := filepath.Join("..", "..", "examples", "quickstart")
	dir := t.TempDir()
	for _, f := range []string{"main.hcl", "directory.ldif"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Skipf("quickstart example not present: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags := config.Load(dir, config.LoadOptions{PlanTime: time.Now()})
	if diags.HasErrors() {
		t.Fatalf("load quickstart: %v", diags)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Kind != "ldif" {
		t.Fatalf("quickstart targets: %+v", cfg.Targets)
	}
	tg, err := Open(context.Background(), cfg.Targets[0], providers.Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.Resolve(context.Background(), []string{"alice", "bob", "dave", "erin", "svc-backup", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range res {
		if r.Err != nil || r.Member.ID != "uid="+p+",ou=people,dc=example,dc=org" {
			t.Errorf("resolve %s: %+v", p, r)
		}
	}
	obs, err := tg.Read(context.Background(), cfg.Groups)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"group.db_admins":  "uid=bob,ou=people,dc=example,dc=org uid=mallory,ou=people,dc=example,dc=org uid=svc-backup,ou=people,dc=example,dc=org",
		"group.web_admins": "uid=erin,ou=people,dc=example,dc=org",
	}
	for addr, w := range want {
		o := obs[addr]
		if o.Err != nil || strings.Join(ids(o.Members), " ") != w {
			t.Errorf("%s: %v %q, want %q", addr, o.Err, ids(o.Members), w)
		}
	}
	// Apply what the quickstart plan does, then again: the second is a no-op.
	db, web := cfg.GroupByAddr("group.db_admins"), cfg.GroupByAddr("group.web_admins")
	changes := []providers.GroupChange{
		{Group: db, Changes: []providers.MemberChange{add(res["alice"].Member.ID), remove(res["bob"].Member.ID), remove("uid=mallory,ou=people,dc=example,dc=org")}},
		{Group: web, Changes: []providers.MemberChange{add(res["dave"].Member.ID)}},
	}
	before, _ := os.ReadFile(filepath.Join(dir, "directory.ldif"))
	for round, want := range []providers.Status{providers.Done, providers.Already} {
		outs, err := tg.Apply(context.Background(), changes)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Status != want {
				t.Errorf("round %d: %s %s in %s: %s %v, want %s", round+1, o.Change.Action, o.Change.Member.ID, o.Group, o.Status, o.Err, want)
			}
		}
	}
	// Only the two changed records were rewritten: every comment and
	// every other line is still there.
	after, _ := os.ReadFile(filepath.Join(dir, "directory.ldif"))
	for _, line := range strings.Split(string(before), "\n") {
		if strings.HasPrefix(line, "member: uid=bob,") || strings.HasPrefix(line, "member: uid=mallory,") {
			if strings.Contains(string(after), line) {
				t.Errorf("removed member still in the file: %s", line)
			}
			continue
		}
		if !strings.Contains(string(after), line) {
			t.Errorf("line lost by the rewrite: %q", line)
		}
	}
}

// TestWriteAtomicKeepsModeAndLink: the replaced file keeps its mode, and a
// symlinked path replaces the file it points to, not the link.
func TestWriteAtomicKeepsModeAndLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.ldif")
	link := filepath.Join(dir, "link.ldif")
	if err := os.WriteFile(real, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if renamed, err := writeAtomic(link, []byte("new")); err != nil || !renamed {
		t.Fatalf("writeAtomic: renamed=%v err=%v", renamed, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	b, _ := os.ReadFile(real)
	fi, _ := os.Stat(real)
	if string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("real file: %q mode %v, want \"new\" 0640", b, fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("temp files left: %v", left)
	}
}
