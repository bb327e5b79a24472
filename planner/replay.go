package planner

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/state"
)

// Outcome statuses written when a later run closes a change whose fate was
// uncertain (an intent a crash left without outcome, or an outcome
// "unknown") by reading the group: the member was found in it, or not.
// An add found present is change_applied (status observed_present), an add
// found absent change_failed (observed_absent); a remove found absent is
// change_applied (observed_absent), a remove found present change_failed
// (observed_present). See docs/ledger.md.
const (
	StatusObservedPresent = "observed_present"
	StatusObservedAbsent  = "observed_absent"
)

// Uncertain is a change whose fate the ledger does not know: its intent has
// no outcome (a crash between intent and outcome), or its outcome is
// "unknown" (the target's answer was lost). The next apply that can read the
// group closes it with an observed_present or observed_absent outcome.
type Uncertain struct {
	Change state.Change
	Seq    int64  // the intent's seq
	Status string // "open" (no outcome) or "unknown"
}

// Replay derives from the ledger what the planner needs: which members
// jitform added (and may therefore remove from a non-exclusive group), the
// grants requested and decided in the ledger, and revocations of repository
// grants. The returned warnings are also kept in LedgerView.Warnings, which
// Compute carries into the plan.
//
// Managed is conservative: an add intent makes the member managed at once,
// because a crash between the provider call and the outcome may have added
// it. An add stays managed while its fate is uncertain (no outcome, or
// "unknown"), until an outcome says the member is certainly not there: an
// add that failed or was observed absent, a remove that was done, already
// so, or observed absent. Changes still uncertain are listed in
// LedgerView.Uncertain for apply to close.
func Replay(cfg *config.Config, events []state.Event, now time.Time) (*LedgerView, []Warning) {
	return ReplayMemo(cfg, events, now, nil)
}

// ReplayMemo is Replay with a memo of verified signatures (nil: none): see
// LedgerGrantsMemo.
func ReplayMemo(cfg *config.Config, events []state.Event, now time.Time, memo grants.Memo) (*LedgerView, []Warning) {
	v := &LedgerView{
		Managed:     map[string]map[string]Managed{},
		Accounts:    map[string]Managed{},
		Credentials: map[string]map[string]bool{},
		Instances:   map[string]map[string]Managed{},
		RevokedRepo: map[string]time.Time{},
	}
	var warns []Warning
	type pending struct {
		c      state.Change
		seq    int64
		status string // "open" or "unknown"
	}
	intents := map[string]*pending{}
	var order []string // intent IDs in ledger order, for Uncertain

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
			intents[c.ID] = &pending{c: c, seq: ev.Seq, status: "open"}
			order = append(order, c.ID)
			if c.Kind == KindAccount {
				switch c.Action {
				case ActionEnable:
					v.Accounts[c.Group] = Managed{Grant: c.Grant, Since: ev.Time.UTC()}
				case ActionCreate:
					m := v.Instances[c.Group]
					if m == nil {
						m = map[string]Managed{}
						v.Instances[c.Group] = m
					}
					if _, ok := m[c.Member]; !ok {
						m[c.Member] = Managed{Grant: c.Grant, Since: ev.Time.UTC()}
					}
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
		case state.EventRemovedByServer:
			// A lock (or someone) removed a member jitform added: there is
			// nothing left for jitform to undo.
			var rb state.RemovedByServer
			if err := json.Unmarshal(ev.Payload, &rb); err == nil {
				delete(v.Managed[rb.Group], rb.Member)
			}
		case state.EventChangeApplied, state.EventChangeFailed:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				warns = append(warns, ledgerWarning(ev, "malformed "+ev.Type+" payload", err.Error()))
				continue
			}
			p, ok := intents[o.ID]
			if !ok {
				warns = append(warns, ledgerWarning(ev, ev.Type+" for an unknown change intent", "intent id "+o.ID))
				continue
			}
			observed := o.Status == StatusObservedPresent || o.Status == StatusObservedAbsent
			if p.status == "unknown" && !observed {
				// Only a read closes an unknown outcome.
				warns = append(warns, ledgerWarning(ev, ev.Type+" after an unknown outcome that is not an observation", "intent id "+o.ID))
				continue
			}
			if o.Status == "unknown" {
				// The call may or may not have happened: the intent stays
				// uncertain (and an add managed) until a read settles it.
				p.status = "unknown"
				continue
			}
			delete(intents, o.ID)
			c := p.c
			if c.Kind == KindAccount {
				replayAccountOutcome(v, c, o, ev.Type == state.EventChangeApplied)
				continue
			}
			gone := false // the member is certainly not in the group now
			switch o.Status {
			case "done", "already":
				gone = c.Action == "remove" && ev.Type == state.EventChangeApplied
			case "failed":
				// The provider certainly did not add it. A failed remove
				// leaves the member there and managed.
				gone = c.Action == "add"
			case StatusObservedAbsent:
				gone = true
			}
			if gone {
				// jitform no longer has anything to undo: a member added by
				// hand later is not jitform's.
				delete(v.Managed[c.Group], c.Member)
			}
		}
	}
	for g, m := range v.Managed {
		if len(m) == 0 {
			delete(v.Managed, g)
		}
	}
	for a, m := range v.Instances {
		if len(m) == 0 {
			delete(v.Instances, a)
		}
	}
	for _, id := range order {
		if p, ok := intents[id]; ok {
			v.Uncertain = append(v.Uncertain, Uncertain{Change: p.c, Seq: p.seq, Status: p.status})
			delete(intents, id) // an ID written twice is listed once
		}
	}
	// In the order of the intents they refer to (an ID written twice is
	// at its last intent), which a ledger compacted by a snapshot
	// (state.CompactForReplay) preserves.
	slices.SortStableFunc(v.Uncertain, func(a, b Uncertain) int { return cmp.Compare(a.Seq, b.Seq) })

	lgs, gw := ledgerGrants(cfg, events, now, memo)
	warns = append(warns, gw...)
	// ledgerGrants reports revocations of repository grants as entries with
	// Source "repository" and Revoked set; they are not ledger grants.
	for _, g := range lgs {
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
// were deleted with it). A failed enable leaves the account as it was. An
// uncertain change closed by a later read (observed_present: enabled,
// observed_absent: disabled) delivered no password on record, so a plan
// with the account enabled sets a new one.
//
// Ephemeral accounts: an applied create records the password delivered to
// its grant; a delete that was applied, or a read that found the account
// gone, ends the record of its creation and its grant's credential. A
// failed create keeps the record: an earlier create may have made it.
func replayAccountOutcome(v *LedgerView, c state.Change, o state.ChangeOutcome, applied bool) {
	ok := applied && (o.Status == "done" || o.Status == "already")
	switch c.Action {
	case ActionCreate:
		switch {
		case ok && len(o.Credentials) > 0:
			m := v.Credentials[c.Group]
			if m == nil {
				m = map[string]bool{}
				v.Credentials[c.Group] = m
			}
			for g := range o.Credentials {
				m[g] = true
			}
		case o.Status == StatusObservedAbsent:
			forgetInstance(v, c)
		}
		return
	case ActionDelete:
		if ok || o.Status == StatusObservedAbsent {
			forgetInstance(v, c)
		}
		return
	}
	switch {
	case c.Action == ActionEnable && o.Status == StatusObservedAbsent,
		c.Action == ActionDisable && o.Status == StatusObservedAbsent:
		delete(v.Accounts, c.Group)
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

// forgetInstance ends the record of an ephemeral account that is gone,
// with the credential of the grant it was created for.
func forgetInstance(v *LedgerView, c state.Change) {
	grant := c.Grant
	if rec, ok := v.Instances[c.Group][c.Member]; ok {
		grant = rec.Grant
		delete(v.Instances[c.Group], c.Member)
	}
	delete(v.Credentials[c.Group], grant)
}

func ledgerWarning(ev state.Event, summary, detail string) Warning {
	return Warning{
		Summary: fmt.Sprintf("ledger event %d: %s", ev.Seq, summary),
		Detail:  detail,
		Subject: fmt.Sprintf("ledger seq %d", ev.Seq),
	}
}
