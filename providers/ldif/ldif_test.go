package ldif

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/providers"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// openCopy copies testdata/name into a temp dir and opens it as a target.
func openCopy(t *testing.T, name, flavor string) (providers.Target, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dir.ldif"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := Open(context.Background(), ldifTarget("dir.ldif", flavor), providers.Options{BaseDir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, filepath.Join(dir, "dir.ldif")
}

func ldifTarget(path, flavor string) *config.Target {
	return &config.Target{Kind: "ldif", Name: "d", Addr: "target.ldif.d", LDIF: &config.LDIFTarget{Path: path, Flavor: flavor}}
}

func group(name, dn string) *config.Group {
	return &config.Group{Name: name, Addr: "group." + name, BaseAddr: "group." + name, DN: dn}
}

func ids(ms []providers.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	slices.Sort(out)
	return out
}

func TestOpenMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // substrings of the error
	}{
		{"missing_colon.ldif", []string{"missing_colon.ldif:4:", "lines 4-6", "Missing :"}},
		{"bad_base64.ldif", []string{"bad_base64.ldif:4:", "base64"}},
		{"bad_attr.ldif", []string{"bad_attr.ldif:4:", "attribute"}},
		{"empty_value.ldif", []string{"empty_value.ldif:4:", "empty value"}},
		{"only_dn.ldif", []string{"only_dn.ldif:4:", "only a dn"}},
		{"no_dn.ldif", []string{"no_dn.ldif:1:", "missing 'dn:'"}},
		{"bad_version.ldif", []string{"bad_version.ldif:1:", "version"}},
		{"change_record.ldif", []string{"change_record.ldif:4:", "change record"}},
		{"bad_dn.ldif", []string{"bad_dn.ldif:4:", `"cn=a,b,dc=x"`}},
		{"duplicate_dn.ldif", []string{"duplicate_dn.ldif:7:", "duplicate_dn.ldif:4"}},
		{"url_value.ldif", []string{"url_value.ldif:5:", "URL value"}},
		{"url_value_folded.ldif", []string{"url_value_folded.ldif:5:", "URL value"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", tt.file)
			before, _ := os.ReadFile(path)
			_, err := Open(context.Background(), ldifTarget(path, ""), providers.Options{})
			if err == nil {
				t.Fatal("Open succeeded on a malformed file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("Open changed the file")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, flavor, principal string
		wantID, wantName        string
		wantErr                 string
	}{
		{"openldap.ldif", "openldap", "alice", "uid=alice,ou=people,dc=example,dc=org", "uid=alice,ou=people,dc=example,dc=org", ""},
		{"openldap.ldif", "", "ALICE", "uid=alice,ou=people,dc=example,dc=org", "uid=alice,ou=people,dc=example,dc=org", ""},
		{"openldap.ldif", "openldap", "UID=Alice, OU=People,DC=Example,DC=org", "uid=alice,ou=people,dc=example,dc=org", "uid=alice,ou=people,dc=example,dc=org", ""},
		{"openldap.ldif", "openldap", "jsmith", `cn=smith\, john+uid=jsmith,ou=people,dc=example,dc=org`, `cn=Smith\, John+uid=jsmith,ou=people,dc=example,dc=org`, ""},
		{"openldap.ldif", "openldap", `uid=jsmith+cn=Smith\2c John,ou=people,dc=example,dc=org`, `cn=smith\, john+uid=jsmith,ou=people,dc=example,dc=org`, `cn=Smith\, John+uid=jsmith,ou=people,dc=example,dc=org`, ""},
		{"openldap.ldif", "openldap", "ZOË", "uid=zoë,ou=people,dc=example,dc=org", "uid=zoë,ou=people,dc=example,dc=org", ""},
		{"openldap.ldif", "openldap", "mallory", "", "", `principal "mallory": no entry with uid="mallory"`},
		{"openldap.ldif", "openldap", "twin", "", "", `principal "twin" is ambiguous`},
		{"openldap.ldif", "openldap", "uid=ghost,dc=example,dc=org", "", "", "no entry with that DN"},
		{"openldap.ldif", "openldap", "*)(uid=*", "", "", "no entry"},
		{"ad.ldif", "active_directory", "alice", "cn=alice andersen,ou=staff,dc=corp,dc=example,dc=com", "CN=Alice Andersen,OU=Staff,DC=corp,DC=example,DC=com", ""},
		{"ad.ldif", "active_directory", "Bob@Corp.Example.Com", "cn=bob becker,ou=staff,dc=corp,dc=example,dc=com", "CN=Bob Becker,OU=Staff,DC=corp,DC=example,DC=com", ""},
		{"ad.ldif", "active_directory", "BBECKER", "cn=bob becker,ou=staff,dc=corp,dc=example,dc=com", "CN=Bob Becker,OU=Staff,DC=corp,DC=example,DC=com", ""},
		{"ad.ldif", "active_directory", "bob", "", "", "sAMAccountName or userPrincipalName"},
		{"ad.ldif", "openldap", "alice", "", "", `uid="alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.principal, func(t *testing.T) {
			t.Parallel()
			tg, err := Open(context.Background(), ldifTarget(filepath.Join("testdata", tt.file), tt.flavor), providers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tg.Resolve(context.Background(), []string{tt.principal})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := got[tt.principal]
			if !ok {
				t.Fatal("no answer for the principal")
			}
			if tt.wantErr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
					t.Fatalf("Err = %v, want it to contain %q", r.Err, tt.wantErr)
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.Member.ID != tt.wantID || r.Member.Name != tt.wantName {
				t.Fatalf("Member = %+v, want ID %q Name %q", r.Member, tt.wantID, tt.wantName)
			}
		})
	}
}

const (
	alice  = "uid=alice,ou=people,dc=example,dc=org"
	bob    = "uid=bob,ou=people,dc=example,dc=org"
	jsmith = `cn=smith\, john+uid=jsmith,ou=people,dc=example,dc=org`
	zoe    = "uid=zoë,ou=people,dc=example,dc=org"
	nobody = "cn=nobody,dc=example,dc=org"
)

func TestRead(t *testing.T) {
	t.Parallel()
	posixByName := &config.Group{Name: "devs", Addr: "group.devs_by_name", GroupName: "DEVS"}
	withPlaceholder := group("solo_ph", "cn=solo,ou=groups,dc=example,dc=org")
	withPlaceholder.Attributes.Placeholder = "UID=alice,ou=people,dc=example,dc=org"
	tests := []struct {
		g       *config.Group
		want    []string
		wantErr string
	}{
		{g: group("admins", "CN=Admins, OU=Groups, DC=Example, DC=Org"), want: []string{jsmith, alice}},
		{g: group("unique", "cn=unique,ou=groups,dc=example,dc=org"), want: []string{alice, bob}},
		// memberUid bob maps to his entry; ghost has none and keeps its uid.
		{g: group("devs", "cn=devs,ou=groups,dc=example,dc=org"), want: []string{"ghost", bob}},
		{g: posixByName, want: []string{"ghost", bob}},
		{g: withPlaceholder, want: []string{}},
		{g: group("missing", "cn=missing,dc=example,dc=org"), wantErr: `no entry "cn=missing,dc=example,dc=org"`},
		{g: group("notagroup", "cn=notagroup,ou=groups,dc=example,dc=org"), wantErr: "not a group jitform can manage"},
	}
	tg, err := Open(context.Background(), ldifTarget("testdata/openldap.ldif", "openldap"), providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gs []*config.Group
	for _, tt := range tests {
		gs = append(gs, tt.g)
	}
	obs, err := tg.Read(context.Background(), gs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		o, ok := obs[tt.g.Addr]
		if !ok {
			t.Errorf("%s: not returned", tt.g.Addr)
			continue
		}
		if tt.wantErr != "" {
			if o.Err == nil || !strings.Contains(o.Err.Error(), tt.wantErr) || !strings.Contains(o.Err.Error(), tt.g.Addr) {
				t.Errorf("%s: Err = %v, want it to name the group and contain %q", tt.g.Addr, o.Err, tt.wantErr)
			}
			continue
		}
		if o.Err != nil {
			t.Errorf("%s: %v", tt.g.Addr, o.Err)
			continue
		}
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if got := ids(o.Members); !slices.Equal(got, want) {
			t.Errorf("%s: members %q, want %q", tt.g.Addr, got, want)
		}
	}
}

func add(id string) providers.MemberChange {
	return providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: id}}
}

func remove(id string) providers.MemberChange {
	return providers.MemberChange{Action: providers.Remove, Member: providers.Member{ID: id}}
}

func TestApply(t *testing.T) {
	t.Parallel()
	admins := group("admins", "cn=admins,ou=groups,dc=example,dc=org")
	solo := group("solo", "cn=solo,ou=groups,dc=example,dc=org")
	soloPH := group("solo", "cn=solo,ou=groups,dc=example,dc=org")
	soloPH.Attributes.Placeholder = "cn=nobody,dc=example,dc=org"
	unique := group("unique", "cn=unique,ou=groups,dc=example,dc=org")
	devs := group("devs", "cn=devs,ou=groups,dc=example,dc=org")
	adOps := group("ops", "cn=domain ops,ou=groups,dc=corp,dc=example,dc=com")
	hostile := group("hostile", "CN=Hostile,DC=X")
	hSpecials, hNUL, hHash, hUni := mustCanon(t, `cn=\"\+\,\;\<\>\=\\ specials,dc=x`), mustCanon(t, `cn=nul\00byte,dc=x`), mustCanon(t, `cn=\#hash\ ,dc=x`), mustCanon(t, "cn=Ünïcödé 日本,dc=x")
	hBig := mustCanon(t, "cn="+strings.Repeat("X", 10240)+",dc=x")
	adAlice := "cn=alice andersen,ou=staff,dc=corp,dc=example,dc=com"
	adBob := "cn=bob becker,ou=staff,dc=corp,dc=example,dc=com"

	tests := []struct {
		name, file, flavor string
		changes            []providers.GroupChange
		want               []providers.Status // per change, in input order
		wantErr            []string           // per change: substring of Err ("" none)
		after              map[*config.Group][]string
		golden             bool // compare the file with testdata/golden/<name>.ldif
	}{
		{
			name: "add and remove", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{add(bob), remove(jsmith), add(zoe)}}},
			want:    []providers.Status{providers.Done, providers.Done, providers.Done},
			after:   map[*config.Group][]string{admins: {alice, bob, zoe}},
			golden:  true,
		},
		{
			name: "already present and absent, written differently", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{add("UID=Alice,OU=People,DC=example,DC=org"), remove(bob)}}},
			want:    []providers.Status{providers.Already, providers.Already},
			after:   map[*config.Group][]string{admins: {alice, jsmith}},
		},
		{
			name: "last member without placeholder", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: solo, Changes: []providers.MemberChange{remove(alice)}}},
			want:    []providers.Status{providers.Failed},
			wantErr: []string{"group.solo (cn=solo,ou=groups,dc=example,dc=org): it is the last member and a groupOfNames must keep one; set placeholder"},
			after:   map[*config.Group][]string{solo: {alice}},
		},
		{
			name: "swap keeps the group non-empty", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: solo, Changes: []providers.MemberChange{remove(alice), add(bob)}}},
			want:    []providers.Status{providers.Done, providers.Done},
			after:   map[*config.Group][]string{solo: {bob}},
		},
		{
			name: "last member with placeholder", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: soloPH, Changes: []providers.MemberChange{remove(alice)}}},
			want:    []providers.Status{providers.Done},
			after:   map[*config.Group][]string{soloPH: {}, solo: {nobody}},
			golden:  true,
		},
		{
			name: "unique members", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: unique, Changes: []providers.MemberChange{remove(bob), add(jsmith)}}},
			want:    []providers.Status{providers.Done, providers.Done},
			after:   map[*config.Group][]string{unique: {alice, jsmith}},
		},
		{
			name: "posix group by uid", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: devs, Changes: []providers.MemberChange{add(alice), add(bob), remove("ghost"), add(zoe)}}},
			want:    []providers.Status{providers.Done, providers.Already, providers.Done, providers.Done},
			after:   map[*config.Group][]string{devs: {alice, bob, zoe}},
			golden:  true,
		},
		{
			name: "posix group remove by DN", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: devs, Changes: []providers.MemberChange{remove(bob), remove(alice)}}},
			want:    []providers.Status{providers.Done, providers.Already},
			after:   map[*config.Group][]string{devs: {"ghost"}},
		},
		{
			name: "posix member with no uid", file: "openldap.ldif",
			changes: []providers.GroupChange{{Group: devs, Changes: []providers.MemberChange{add(nobody)}}},
			want:    []providers.Status{providers.Failed},
			wantErr: []string{"has 0 uid values"},
			after:   map[*config.Group][]string{devs: {"ghost", bob}},
		},
		{
			name: "missing group fails, other group applied", file: "openldap.ldif",
			changes: []providers.GroupChange{
				{Group: group("missing", "cn=missing,dc=example,dc=org"), Changes: []providers.MemberChange{add(alice)}},
				{Group: admins, Changes: []providers.MemberChange{add(bob)}},
			},
			want:    []providers.Status{providers.Failed, providers.Done},
			wantErr: []string{`group group.missing: no entry "cn=missing,dc=example,dc=org"`, ""},
			after:   map[*config.Group][]string{admins: {alice, bob, jsmith}},
		},
		{
			name: "hostile names in a CRLF file", file: "hostile.ldif",
			changes: []providers.GroupChange{{Group: hostile, Changes: []providers.MemberChange{
				add(hHash), add(hBig), remove(hNUL), add(hUni), remove(hSpecials)}}},
			want:   []providers.Status{providers.Done, providers.Done, providers.Done, providers.Already, providers.Done},
			after:  map[*config.Group][]string{hostile: {hUni, hHash, hBig}},
			golden: true,
		},
		{
			name: "AD group may become empty", file: "ad.ldif", flavor: "active_directory",
			changes: []providers.GroupChange{{Group: adOps, Changes: []providers.MemberChange{remove(adAlice)}}},
			want:    []providers.Status{providers.Done},
			after:   map[*config.Group][]string{adOps: {}},
		},
		{
			name: "AD group gains a member written as in its entry", file: "ad.ldif", flavor: "active_directory",
			changes: []providers.GroupChange{{Group: adOps, Changes: []providers.MemberChange{add(adBob)}}},
			want:    []providers.Status{providers.Done},
			after:   map[*config.Group][]string{adOps: {adAlice, adBob}},
			golden:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg, path := openCopy(t, tt.file, tt.flavor)
			before, _ := os.ReadFile(path)
			outs, err := tg.Apply(context.Background(), tt.changes)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			var flat []providers.MemberChange
			for _, gc := range tt.changes {
				flat = append(flat, gc.Changes...)
			}
			if len(outs) != len(flat) {
				t.Fatalf("%d outcomes for %d changes", len(outs), len(flat))
			}
			anyDone := false
			for i, c := range flat {
				var o *providers.Outcome
				for j := range outs {
					if outs[j].Change == c {
						o = &outs[j]
					}
				}
				if o == nil {
					t.Fatalf("no outcome for %v", c)
				}
				if o.Status != tt.want[i] {
					t.Errorf("%s %s: status %s (%v), want %s", c.Action, c.Member.ID, o.Status, o.Err, tt.want[i])
				}
				anyDone = anyDone || o.Status == providers.Done
				want := ""
				if tt.wantErr != nil {
					want = tt.wantErr[i]
				}
				switch {
				case want == "" && o.Err != nil && o.Status.OK():
					t.Errorf("%s %s: unexpected error %v", c.Action, c.Member.ID, o.Err)
				case want != "" && (o.Err == nil || !strings.Contains(o.Err.Error(), want)):
					t.Errorf("%s %s: error %v, want it to contain %q", c.Action, c.Member.ID, o.Err, want)
				}
			}
			after, _ := os.ReadFile(path)
			if !anyDone && !bytes.Equal(before, after) {
				t.Error("the file changed though no change was made")
			}
			// A fresh Open sees the result: it is on disk, not only in memory.
			fresh, err := Open(context.Background(), ldifTarget(path, tt.flavor), providers.Options{})
			if err != nil {
				t.Fatalf("reopen after Apply: %v", err)
			}
			for _, tgt := range []providers.Target{tg, fresh} {
				for g, want := range tt.after {
					obs, err := tgt.Read(context.Background(), []*config.Group{g})
					if err != nil || obs[g.Addr].Err != nil {
						t.Fatalf("Read %s: %v %v", g.Addr, err, obs[g.Addr].Err)
					}
					want = slices.Clone(want)
					slices.Sort(want)
					if got := ids(obs[g.Addr].Members); !slices.Equal(got, want) {
						t.Errorf("%s after Apply: %q, want %q", g.Addr, got, want)
					}
				}
			}
			if tt.golden {
				checkGolden(t, strings.ReplaceAll(tt.name, " ", "_")+".ldif", after)
			}
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
			if len(leftovers) > 0 {
				t.Errorf("temp files left behind: %v", leftovers)
			}
		})
	}
}

func mustCanon(t *testing.T, s string) string {
	t.Helper()
	c, err := dn.Canonical(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file differs from %s (go test -update to accept):\n%s", path, got)
	}
}
