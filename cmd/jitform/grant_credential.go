package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const grantCredentialUsage = `
Usage: jitform [-C DIR] grant credential ID --key FILE

Prints the password of the account a grant enabled (an account block with
rotate_password = true). jitform set that password when it enabled the
account for the grant's window and stored it only encrypted (age) to the
grant principal's declared ssh_key, in .jitform/credentials/ID.age; this
decrypts it with that principal's private key. The password is printed on
stdout and nowhere else; it stops working when the window ends (jitform
sets a new one when it disables the account, and deletes the stored copy).

ID is a ledger grant ID or a grant block's address (grant.NAME).

Flags:
  --key FILE  the principal's SSH private key (ssh-ed25519 or ssh-rsa, as
              declared in actor "NAME" { ssh_key = ... }); a passphrase is
              asked for on a terminal

Examples:
  jitform grant credential g-k3x9q2m7ab --key ~/.ssh/id_ed25519
  jitform grant credential grant.alice_chg1042 --key ~/.ssh/id_ed25519 | xclip
`

func grantCredential(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant credential", grantCredentialUsage)
	keyFile := fs.String("key", "", "the grant principal's SSH private key")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("grant credential takes one grant ID (got %d arguments); jitform grant list shows the IDs", fs.NArg())
	}
	if *keyFile == "" {
		return a.errorf("grant credential needs --key FILE: the private SSH key of the grant's principal, which the password was encrypted to")
	}
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	store, ok := b.(state.CredentialStore)
	if !ok {
		return a.errorf("this state backend does not store credentials")
	}
	id := fs.Arg(0)
	ct, err := store.GetCredential(ctx, id)
	if errors.Is(err, state.ErrNoCredential) && !strings.HasPrefix(id, "grant.") && !strings.HasPrefix(id, "g-") {
		ct, err = store.GetCredential(ctx, "grant."+id)
	}
	if errors.Is(err, state.ErrNoCredential) {
		return a.errorf("no password is stored for grant %s: jitform stores one when it enables an account with rotate_password for an active grant (run jitform apply), and deletes it when the account is disabled", id)
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	key, err := os.ReadFile(a.path(*keyFile))
	if err != nil {
		return a.errorf("read the private key: %v", err)
	}
	var ask func() ([]byte, error)
	if a.stdinTTY {
		ask = func() ([]byte, error) {
			fmt.Fprintf(a.stderr, "Passphrase for %s: ", *keyFile)
			defer fmt.Fprintln(a.stderr)
			return term.ReadPassword(int(os.Stdin.Fd()))
		}
	}
	pw, err := operation.DecryptCredential(ct, key, ask)
	if errors.Is(err, operation.ErrKeyPassphrase) {
		return a.errorf("%s is protected by a passphrase; run this on a terminal to be asked for it", *keyFile)
	}
	if err != nil {
		return a.errorf("grant %s: %v", id, err)
	}
	fmt.Fprintln(a.stdout, pw.Reveal())
	return exitOK
}
