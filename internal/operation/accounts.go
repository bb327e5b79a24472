package operation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// applyAccounts makes one target's account changes with the same crash
// safety as membership changes: every change is announced by a
// change_intent event (kind "account") before the provider call and closed
// by an outcome event after it. A crash in between leaves an enable intent
// without outcome, which the planner counts as "may be enabled, no password
// delivered": the next plan enables again with a fresh password.
//
// rotate_password: a new password is generated for every enable and every
// disable. For an enable it is encrypted (age) to the SSH key of each
// recipient grant's principal and stored in the state's CredentialStore
// before the provider call; the outcome records only each ciphertext's
// fingerprint. For a disable nobody receives it, and after the account is
// disabled the stored credentials of the listed grants are deleted. The
// password never reaches the ledger, the plan, a log line or an error.
//
// Outcomes are written into out by index. It returns an error only when
// the ledger could not be written.
func (s *Session) applyAccounts(ctx context.Context, gc *groupCommit, p *planner.Plan, runID string,
	taddr string, idx []int, out []Outcome) error {

	fail := func(i int, err error) { out[i].Status, out[i].Err = providers.Failed, err }
	t := s.targets[taddr]
	if t == nil {
		err := s.openErr[taddr]
		if err == nil {
			err = fmt.Errorf("target %s is not open", taddr)
		}
		for _, i := range idx {
			fail(i, err)
		}
		return nil
	}
	am, ok := t.(providers.AccountManager)
	if !ok {
		for _, i := range idx {
			fail(i, fmt.Errorf("%s: account not supported by this provider yet", taddr))
		}
		return nil
	}
	store, _ := s.opts.Backend.(state.CredentialStore)

	type prepared struct {
		i        int
		id       string
		change   providers.AccountChange
		password config.Secret
		cipher   map[string][]byte // grant -> ciphertext, for an enable
	}
	var work []*prepared
	for _, i := range idx {
		c := p.Changes[i]
		acc := s.Config.AccountByAddr(c.Group)
		if acc == nil {
			fail(i, fmt.Errorf("account %s is no longer in the configuration", c.Group))
			continue
		}
		w := &prepared{i: i, id: fmt.Sprintf("%s-%d", runID, i),
			change: providers.AccountChange{Account: acc, Enable: c.Action == planner.ActionEnable || c.Action == planner.ActionCreate}}
		switch c.Action {
		case planner.ActionEnable, planner.ActionDisable:
			if acc.Ephemeral {
				fail(i, fmt.Errorf("account %s is ephemeral: it is created and deleted, not %sd", c.Group, c.Action))
				continue
			}
			if c.Action == planner.ActionEnable && c.Reason.WindowEnd != nil {
				// The reason is the counting grant that lasts longest: a
				// provider with a lock of its own (a Windows host's
				// dead-man's switch) disables the account after its end.
				w.change.Expires, w.change.Grant = *c.Reason.WindowEnd, c.Reason.Grant
			}
		case planner.ActionCreate, planner.ActionDelete:
			if !acc.Ephemeral {
				fail(i, fmt.Errorf("account %s is not ephemeral: it is enabled and disabled, not %sd", c.Group, strings.TrimSuffix(c.Action, "e")))
				continue
			}
			w.change.Create, w.change.Delete = c.Action == planner.ActionCreate, c.Action == planner.ActionDelete
			w.change.Instance = &providers.Instance{Name: c.Object, DN: c.MemberName, Grant: c.Reason.Grant}
			if w.change.Create && len(c.Credentials) > 0 {
				w.change.Instance.Grant = c.Credentials[0].Grant
			}
		default:
			fail(i, fmt.Errorf("account %s: unknown action %q", c.Group, c.Action))
			continue
		}
		if c.PasswordRotated {
			pw, err := NewPassword()
			if err != nil {
				fail(i, err)
				continue
			}
			w.password, w.change.Password = pw, pw
			if w.change.Enable || w.change.Create {
				if store == nil {
					fail(i, fmt.Errorf("account %s: the state backend cannot store credentials, so a rotated password could not be delivered; not attempted", c.Group))
					continue
				}
				w.cipher = map[string][]byte{}
				var err error
				for _, cr := range c.Credentials {
					actor := s.Config.ActorForPrincipal(cr.Principal)
					if actor == nil {
						err = fmt.Errorf("account %s: %s's principal %q is not a declared actor with an ssh_key; not attempted", c.Group, cr.Grant, cr.Principal)
						break
					}
					ct, e := EncryptCredential(actor.SSHKey, pw)
					if e != nil {
						err = fmt.Errorf("account %s: for %s: %w; not attempted", c.Group, cr.Grant, e)
						break
					}
					w.cipher[cr.Grant] = ct
				}
				if err != nil {
					fail(i, err)
					continue
				}
			}
		}
		work = append(work, w)
	}

	// Announce every change in one durable write, then store the
	// ciphertexts: the principal can fetch the password as soon as the
	// account is enabled, and no change is made without its intent.
	var announced []*prepared
	var intents []state.Event
	for _, w := range work {
		c := p.Changes[w.i]
		crashpoint.Hit(crashpoint.BeforeIntent)
		member := c.Object
		if w.change.Instance != nil {
			member = c.Member // the created account's canonical DN
		}
		ev, err := gc.event(state.EventChangeIntent, state.Change{
			ID: w.id, PlanID: p.ID, Kind: planner.KindAccount, Action: c.Action, Group: c.Group, Target: c.Target,
			Member: member, Reason: c.Reason.Kind,
			Grant: c.Reason.Grant, Policy: c.Reason.Policy, Ticket: c.Reason.Ticket,
		})
		if err != nil {
			fail(w.i, fmt.Errorf("not attempted: %w", err))
			continue
		}
		intents = append(intents, ev)
		announced = append(announced, w)
	}
	if len(announced) == 0 {
		return nil
	}
	if err := gc.append(ctx, intents); err != nil {
		for _, w := range announced {
			fail(w.i, fmt.Errorf("not attempted: recording the intent failed: %w", err))
		}
		return fmt.Errorf("change intents for %d account change(s) on %s: %w", len(announced), taddr, err)
	}
	for range announced {
		crashpoint.Hit(crashpoint.AfterIntent)
	}
	var calls []providers.AccountChange
	for _, w := range announced {
		var err error
		for g, ct := range w.cipher {
			if err = store.PutCredential(ctx, g, ct); err != nil {
				break
			}
		}
		if err != nil {
			fail(w.i, fmt.Errorf("%s: store the credential: %w; not attempted", p.Changes[w.i].Group, err))
			s.dropCredentials(ctx, store, w.cipher)
			continue
		}
		calls = append(calls, w.change)
	}

	var outs []providers.AccountOutcome
	var callErr error
	if len(calls) > 0 {
		s.opts.progress("%s: applying %d account change(s)", taddr, len(calls))
		outs, callErr = am.SetAccounts(ctx, calls)
		for range calls {
			crashpoint.Hit(crashpoint.AfterCall)
		}
	}
	got := map[string]providers.AccountOutcome{}
	for _, o := range outs {
		got[o.Change.Key()] = o
	}

	results := make([]state.Event, 0, len(announced))
	var errs []error
	for _, w := range announced {
		i, c := w.i, p.Changes[w.i]
		if out[i].Err == nil { // not already failed before the call
			o, ok := got[w.change.Key()]
			switch {
			case callErr != nil && !ok:
				out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s %s: %w", c.Action, c.Group, callErr)
			case !ok:
				out[i].Status, out[i].Err = providers.Unknown, fmt.Errorf("%s reported no outcome for %s %s", taddr, c.Action, c.Group)
			default:
				out[i].Status, out[i].Err = o.Status, o.Err
				if !o.Status.OK() && o.Err == nil {
					out[i].Err = errors.New("the provider reported a failure without a reason")
				}
			}
			if out[i].Err != nil && w.password.IsSet() {
				out[i].Err = scrubSecret(out[i].Err, w.password)
			}
		}
		oc := state.ChangeOutcome{ID: w.id, Status: string(out[i].Status), PasswordRotated: w.password.IsSet() && out[i].Status.OK()}
		typ := state.EventChangeApplied
		if !out[i].Status.OK() {
			typ = state.EventChangeFailed
			oc.Error = out[i].Err.Error()
		}
		delivers := c.Action == planner.ActionEnable || c.Action == planner.ActionCreate
		switch {
		case delivers && out[i].Status.OK() && len(w.cipher) > 0:
			oc.Credentials = map[string]string{}
			for g, ct := range w.cipher {
				oc.Credentials[g] = Fingerprint(ct)
			}
		case delivers && out[i].Status == providers.Failed:
			// The password was certainly not set: its copies are useless.
			s.dropCredentials(ctx, store, w.cipher)
		case (c.Action == planner.ActionDisable || c.Action == planner.ActionDelete) && out[i].Status.OK() && store != nil:
			for _, cr := range c.Credentials {
				if err := store.DeleteCredential(ctx, cr.Grant); err != nil {
					s.opts.progress("%s: warning: the account is disabled but the stored credential of %s could not be deleted: %v", c.Group, cr.Grant, err)
				}
			}
		}
		ev, err := gc.event(typ, oc)
		if err != nil {
			errs = append(errs, fmt.Errorf("outcome of %s %s: %w", c.Action, c.Group, err))
			continue
		}
		results = append(results, ev)
	}
	if err := gc.append(ctx, results); err != nil {
		errs = append(errs, fmt.Errorf("outcomes of %d account change(s) on %s: %w", len(results), taddr, err))
	}
	return errors.Join(errs...)
}

func (s *Session) dropCredentials(ctx context.Context, store state.CredentialStore, cipher map[string][]byte) {
	for g := range cipher {
		if err := store.DeleteCredential(ctx, g); err != nil {
			s.opts.progress("warning: could not delete the unused credential of %s: %v", g, err)
		}
	}
}

// scrubSecret replaces the password in an error's text, should a provider
// ever echo it.
func scrubSecret(err error, pw config.Secret) error {
	if msg := err.Error(); strings.Contains(msg, pw.Reveal()) {
		return errors.New(strings.ReplaceAll(msg, pw.Reveal(), "(sensitive)"))
	}
	return err
}
