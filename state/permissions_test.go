package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnsafeStateIsRefused: like ssh with a private key, jitform refuses
// state others could write or redirect, names the path and the fix, and
// changes nothing: not when opened, read, appended to or locked.
func TestUnsafeStateIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, sd string) // sd is DIR/.jitform
		path     string                        // the path the error names, relative to DIR
		want     string
		fix      string
		refusing bool
	}{
		{"state dir 0777", chmodIn(".", 0o777), ".jitform", "writable by group or others (mode 0777)", "chmod 700 ", true},
		{"state dir group-writable", chmodIn(".", 0o770), ".jitform", "mode 0770", "chmod 700 ", true},
		{"state dir world-readable is fine", chmodIn(".", 0o755), "", "", "", false},
		{"ledger 0666", chmodIn(LedgerFileName, 0o666), ".jitform/ledger.jsonl", "writable by group or others (mode 0666)", "chmod 600 ", true},
		{"head group-writable", chmodIn(HeadFileName, 0o620), ".jitform/ledger.head", "mode 0620", "chmod 600 ", true},
		{"lock world-writable", chmodIn(LockFileName, 0o602), ".jitform/lock", "mode 0602", "chmod 600 ", true},
		{"ledger world-readable is fine", chmodIn(LedgerFileName, 0o644), "", "", "", false},
		{"state dir a symlink into /tmp", func(t *testing.T, sd string) {
			elsewhere := filepath.Join(t.TempDir(), "state")
			must(t, os.Rename(sd, elsewhere))
			must(t, os.Symlink(elsewhere, sd))
		}, ".jitform", "is a symbolic link (to ", "replace the link by the directory itself", true},
		{"ledger a symlink", func(t *testing.T, sd string) {
			elsewhere := filepath.Join(t.TempDir(), "ledger.jsonl")
			must(t, os.Rename(filepath.Join(sd, LedgerFileName), elsewhere))
			must(t, os.Symlink(elsewhere, filepath.Join(sd, LedgerFileName)))
		}, ".jitform/ledger.jsonl", "is a symbolic link", "cp --remove-destination ", true},
		{"any other file a symlink", func(t *testing.T, sd string) {
			must(t, os.Symlink("/etc/passwd", filepath.Join(sd, "notes")))
		}, ".jitform/notes", "is a symbolic link (to /etc/passwd)", "replace the link", true},
		{"head a directory", func(t *testing.T, sd string) {
			must(t, os.Remove(filepath.Join(sd, HeadFileName)))
			must(t, os.Mkdir(filepath.Join(sd, HeadFileName), 0o700))
		}, ".jitform/ledger.head", "not a regular file", "mode 0600", true},
		{"state dir a file", func(t *testing.T, sd string) {
			must(t, os.RemoveAll(sd))
			must(t, os.WriteFile(sd, []byte("x"), 0o600))
		}, ".jitform", "not a directory", "move it away", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, l := newLedger(t, 3)
			unlock, err := l.Lock(ctx, LockInfo{Operation: "test"}, time.Second)
			must(t, err)
			must(t, unlock())
			sd := filepath.Join(dir, StateDirName)
			tc.damage(t, sd)
			before := snapshot(t, sd)

			check := func(op string, err error) {
				t.Helper()
				if !tc.refusing {
					if err != nil {
						t.Fatalf("%s: %v; want safe state accepted", op, err)
					}
					return
				}
				var ue *UnsafeStateError
				if !errors.As(err, &ue) {
					t.Fatalf("%s = %v; want an UnsafeStateError", op, err)
				}
				if want := filepath.Join(dir, tc.path); ue.Path != want {
					t.Fatalf("%s names %s, want %s", op, ue.Path, want)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Fix: ") || !strings.Contains(msg, tc.fix) {
					t.Fatalf("%s = %q; want it to say %q and the fix %q", op, msg, tc.want, tc.fix)
				}
			}
			_, err = NewLocal(dir)
			check("NewLocal", err)
			_, err = l.Events(ctx)
			check("Events", err)
			if tc.refusing {
				_, err = l.Append(ctx, testEvent("x", 1))
				check("Append", err)
				_, err = l.Lock(ctx, LockInfo{Operation: "test"}, time.Second)
				check("Lock", err)
				if after := snapshot(t, sd); after != before {
					t.Fatalf("refused state was changed:\nbefore %s\nafter  %s", before, after)
				}
			}
		})
	}
}

// TestNewStateIsPrivate: what jitform creates is 0700 and 0600, so it
// always passes its own check.
func TestNewStateIsPrivate(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 1)
	unlock, err := l.Lock(context.Background(), LockInfo{Operation: "test"}, time.Second)
	must(t, err)
	must(t, unlock())
	for name, want := range map[string]os.FileMode{"": 0o700, LedgerFileName: 0o600, HeadFileName: 0o600, LockFileName: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, StateDirName, name))
		must(t, err)
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Join(StateDirName, name), fi.Mode().Perm(), want)
		}
	}
}

func chmodIn(name string, mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, sd string) { must(t, os.Chmod(filepath.Join(sd, name), mode)) }
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot is every entry of the state directory with its size and mode.
func snapshot(t *testing.T, sd string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(sd, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err == nil {
			fmt.Fprintf(&b, "%s %s %d\n", p, fi.Mode(), fi.Size())
		}
		return nil
	})
	return b.String()
}
