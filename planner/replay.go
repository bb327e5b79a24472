package planner

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// Replay derives from the ledger what the planner needs: which members
// jitform added (and may therefore remove from a non-exclusive group), the
// grants requested and decided in the ledger, and revocations of repository
// grants. The returned warnings are also kept in LedgerView.Warnings, which
// Compute carries into the plan.
//
// Managed is conservative: an add intent makes the member managed at once,
// because a crash between the provider call and the outcome may have added
// it. Only an outcome that says the member is certainly not there (a remove
// that was done or already so, an add that failed) clears the record.
func Replay(cfg *config.Config, events []state.Event, now time.Time) (*LedgerView, []Warning) {
	v := &LedgerView{
		Managed:     map[string]map[string]Managed{},
		Accounts:    map[string]Managed{},
		Credentials: map[string]map[string]bool{},
		RevokedRepo: map[string]time.Time{},
	}
	var warns []Warning
	intents := map[string]state.Change{}

	for _, ev := range events {
		switch ev.Type {
		case state.EventChangeIntent:
			var c state.Change
			if err := json.Unmarshal(ev.Payload, &c); err != nil {
				warns = append(warns, ledgerWarning(ev, "malformed change_intent payload", err.Error()))
				continue
			}
			if c.ID == "" || c.Group == "" || c.Member == "" {
				warns = append(warns, ledgerWarning(ev, "change_intent without id, group or member", ""))
				continue
			}
			intents[c.ID] = c
			if c.Kind == KindAccount {
				if c.Action == ActionEnable {
					v.Accounts[c.Group] = Managed{Grant: c.Grant, Since: ev.Time.UTC()}
				}
				continue
			}
			if c.Action == "add" {
				m := v.Managed[c.Group]
				if m == nil {
					m = map[string]Managed{}
					v.Managed[c.Group] = m
				}
				m[c.Member] = Managed{Grant: c.Grant, Since: ev.Time.UTC()}
			}
		case state.EventChangeApplied, state.EventChangeFailed:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				warns = append(warns, ledgerWarning(ev, "malformed "+ev.Type+" payload", err.Error()))
				continue
			}
			c, ok := intents[o.ID]
			if !ok {
				warns = append(warns, ledgerWarning(ev, ev.Type+" for an unknown change intent", "intent id "+o.ID))
				continue
			}
			delete(intents, o.ID)
			if c.Kind == KindAccount {
				replayAccountOutcome(v, c, o, ev.Type == state.EventChangeApplied)
				continue
			}
			switch {
			case c.Action == "remove" && ev.Type == state.EventChangeApplied && (o.Status == "done" || o.Status == "already"):
				// The member is gone: jitform no longer has anything to undo.
				delete(v.Managed[c.Group], c.Member)
			case c.Action == "add" && o.Status == "failed":
				// The provider certainly did not add it ("unknown" may have:
				// it stays managed). A failed remove leaves the member there
				// and managed.
				delete(v.Managed[c.Group], c.Member)
			}
		}
	}
	for g, m := range v.Managed {
		if len(m) == 0 {
			delete(v.Managed, g)
		}
	}

	grants, gw := ledgerGrants(cfg, events, now)
	warns = append(warns, gw...)
	// ledgerGrants reports revocations of repository grants as entries with
	// Source "repository" and Revoked set; they are not ledger grants.
	for _, g := range grants {
		if g.Source == "repository" {
			if g.Revoked {
				v.RevokedRepo[g.ID] = g.RevokedAt.UTC()
			}
			continue
		}
		v.Grants = append(v.Grants, g)
	}
	v.Warnings = warns
	return v, warns
}

// replayAccountOutcome: an applied enable records the delivered passwords;
// an applied disable clears the account's record and its credentials (they
// were deleted with it). A failed enable leaves the account as it was.
func replayAccountOutcome(v *LedgerView, c state.Change, o state.ChangeOutcome, applied bool) {
	ok := applied && (o.Status == "done" || o.Status == "already")
	switch {
	case c.Action == ActionEnable && ok:
		if len(o.Credentials) > 0 {
			m := map[string]bool{}
			for g := range o.Credentials {
				m[g] = true
			}
			v.Credentials[c.Group] = m // a new password replaces every earlier one
		}
	case c.Action == ActionEnable && o.Status == "failed":
		delete(v.Accounts, c.Group)
	case c.Action == ActionDisable && ok:
		delete(v.Accounts, c.Group)
		delete(v.Credentials, c.Group)
	}
}

func ledgerWarning(ev state.Event, summary, detail string) Warning {
	return Warning{
		Summary: fmt.Sprintf("ledger event %d: %s", ev.Seq, summary),
		Detail:  detail,
		Subject: fmt.Sprintf("ledger seq %d", ev.Seq),
	}
}
