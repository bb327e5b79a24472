package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// identityFlags adds --as and --key.
func identityFlags(a *app, fs interface {
	StringVar(*string, string, string, string)
}) (as, key *string) {
	as, key = new(string), new(string)
	fs.StringVar(as, "as", a.getenv("JITFORM_ACTOR"), "sign as the declared actor `NAME` (default $JITFORM_ACTOR)")
	fs.StringVar(key, "key", a.getenv("JITFORM_KEY"), "sign with the private key in `FILE` (default $JITFORM_KEY, else the ssh-agent)")
	return as, key
}

// signer finds the key that signs for actor: --key FILE, or the ssh-agent
// key equal to the actor's declared ssh_key. A passphrase is asked for only
// on a terminal.
func (a *app) signer(ctx context.Context, cfg *config.Config, as, keyFile string) (ssh.Signer, func(), error) {
	if err := checkActor(cfg, as, "signing"); err != nil {
		return nil, nil, err
	}
	actor := cfg.ActorByName(as)
	pub, err := state.ParsePublicKey(actor.SSHKey)
	if err != nil {
		return nil, nil, fmt.Errorf("actor %s: %w", as, err)
	}
	if keyFile != "" {
		var ask func() ([]byte, error)
		if a.stdinTTY && a.errTTY {
			ask = func() ([]byte, error) {
				fmt.Fprintf(a.stderr, "Passphrase for %s: ", keyFile)
				defer fmt.Fprintln(a.stderr)
				return term.ReadPassword(int(os.Stdin.Fd()))
			}
		}
		s, err := state.SignerFromKeyFile(keyFile, pub, ask)
		if err != nil {
			return nil, nil, fmt.Errorf("sign as %s: %w", as, err)
		}
		return s, func() {}, nil
	}
	s, closer, err := state.SignerFromAgent(ctx, a.getenv("SSH_AUTH_SOCK"), pub)
	if err != nil {
		return nil, nil, fmt.Errorf("sign as %s: %w", as, err)
	}
	return s, func() { closer.Close() }, nil
}

// checkActor says what is wrong with --as before anything is checked or
// signed: missing, or not a declared actor.
func checkActor(cfg *config.Config, as, doing string) error {
	if as == "" {
		return fmt.Errorf("say who is %s: --as NAME (a declared actor), or set JITFORM_ACTOR", doing)
	}
	if cfg.ActorByName(as) != nil {
		return nil
	}
	names := make([]string, 0, len(cfg.Actors))
	for _, ac := range cfg.Actors {
		names = append(names, ac.Name)
	}
	known := "none are declared"
	if len(names) > 0 {
		known = "declared: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%q is not a declared actor (%s); add actor %q { ssh_key = \"ssh-ed25519 AAAA...\" } to the repository", as, known, as)
}

// appendSigned signs ev (built by state.NewSignedEvent and accepted by the
// grant workflow) as its actor and appends it to the ledger.
func (a *app) appendSigned(ctx context.Context, env *grantEnv, ev state.Event, keyFile string) (state.Event, error) {
	signer, done, err := a.signer(ctx, env.cfg, ev.Actor, keyFile)
	if err != nil {
		return state.Event{}, err
	}
	defer done()
	if err := state.SignEvent(&ev, signer); err != nil {
		return state.Event{}, err
	}
	// What Check could not see before signing: the signature itself (a
	// security key's flags under require_security_key).
	if refusal := env.book().CheckSigned(ev); refusal != nil {
		return state.Event{}, fmt.Errorf("nothing written: %s", refusal.Interactive())
	}
	written, err := env.b.Append(ctx, ev)
	if err != nil {
		return state.Event{}, fmt.Errorf("append the %s event to the ledger: %w", ev.Type, err)
	}
	if len(written) == 1 {
		ev = written[0]
	}
	env.events = append(env.events, ev)
	env.replayed = nil
	a.notifyLedger(ctx, env.cfg, env.events, ev)
	return ev, nil
}
