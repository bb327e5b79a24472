package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLocalCredentialStore: a credential is stored at
// .jitform/credentials/<grant-id>.age with mode 0600 (directory 0700), read
// back, replaced, deleted (twice is fine), and a grant ID that could escape
// the directory is refused.
func TestLocalCredentialStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.GetCredential(ctx, "grant.x"); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("get before put: %v, want ErrNoCredential", err)
	}
	if err := l.PutCredential(ctx, "grant.x", []byte("cipher-1")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, StateDirName, CredentialsDirName, "grant.x.age")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file %s: %v, mode %v", p, err, fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory mode %v, want 0700", di.Mode().Perm())
	}
	if err := l.PutCredential(ctx, "grant.x", []byte("cipher-2")); err != nil {
		t.Fatal(err)
	}
	if b, err := l.GetCredential(ctx, "grant.x"); err != nil || string(b) != "cipher-2" {
		t.Fatalf("get = %q, %v", b, err)
	}
	if err := l.DeleteCredential(ctx, "grant.x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after delete: %v", err)
	}
	if err := l.DeleteCredential(ctx, "grant.x"); err != nil {
		t.Errorf("second delete: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", ".hidden", "", `a\b`} {
		if err := l.PutCredential(ctx, bad, []byte("c")); err == nil {
			t.Errorf("PutCredential(%q) accepted", bad)
		}
	}
}
