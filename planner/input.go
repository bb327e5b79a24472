package planner

import (
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// Input is everything a plan is computed from. Building it is I/O (reading
// targets and the ledger); computing the plan from it is not.
type Input struct {
	Config *config.Config
	Now    time.Time

	// Observed membership by group address.
	Observed map[string]providers.Observation
	// Accounts: observed state by account address. A missing entry, or
	// one with Err, is an unreadable account: nothing is planned for it.
	Accounts map[string]providers.AccountState
	// Unsupported: managed sets and accounts (by address) whose target's
	// provider does not handle their kind yet (a sudo_role on a provider
	// without it), with the reason. The plan warns about each, at its
	// block, and plans nothing for it.
	Unsupported map[string]string
	// Resolved principals by target address, then principal as written.
	Resolved map[string]map[string]providers.Resolution
	// InGroup answers eligibility by directory group: target address ->
	// "group:<DN>" -> principal -> member. Missing means not eligible.
	InGroup map[string]map[string]map[string]bool

	// Ledger is the replayed ledger (see Replay).
	Ledger *LedgerView
	// LedgerHead is the hash of the last ledger event ("" when empty).
	LedgerHead string
}

// Grant is a grant as the planner sees it, whether declared in the repository
// or requested and approved in the ledger.
type Grant struct {
	ID        string // grant.NAME for repository grants; the request ID for ledger grants
	Source    string // "repository" or "ledger"
	Policy    string // policy address
	Principal string
	Start     time.Time
	End       time.Time
	Ticket    string
	Reason    string
	// Approvers are the distinct approvers that count: for repository grants
	// the declared approved_by; for ledger grants those whose signatures
	// verify against a declared actor key.
	Approvers []string
	// ApproverFactors: for ledger approvals signed with a security key,
	// approver -> grants.FactorSecurityKeyPresence or
	// grants.FactorSecurityKeyUserVerified.
	ApproverFactors map[string]string
	Revoked         bool
	RevokedAt       time.Time
	BreakGlass      bool
	Unreviewed      bool // break-glass grant not yet reviewed
	Pending         bool // requested, not yet approved
	Denied          bool
	Expired         bool // pending request past the policy's request_ttl
	// Where it was declared (repository grants), for warnings.
	Subject string
}

// LedgerView is what the planner needs from the ledger.
type LedgerView struct {
	// Grants requested and decided in the ledger.
	Grants []Grant
	// Managed: group address -> member ID -> record of jitform adding it.
	// An add intent without an outcome counts: the member may be there.
	Managed map[string]map[string]Managed
	// Accounts: account address -> the grant jitform last enabled it for.
	// An enable intent without an outcome counts (it may be enabled).
	Accounts map[string]Managed
	// Instances: ephemeral account address -> canonical DN of an account
	// jitform created -> the grant it was created for. A create intent
	// without an outcome counts (it may exist); a delete that was applied,
	// or a read that found it gone, ends the record. Only recorded
	// accounts are ever deleted.
	Instances map[string]map[string]Managed
	// Credentials: account address -> grant ID -> a password delivered
	// for that grant and not yet deleted (an enable that was applied).
	Credentials map[string]map[string]bool
	// Uncertain: changes whose fate the ledger does not know (an intent
	// without outcome, an outcome "unknown"), in ledger order. apply closes
	// each once it can read the group.
	Uncertain []Uncertain
	// Revoked repository grants (grant.NAME -> when).
	RevokedRepo map[string]time.Time
	// Warnings found while replaying (malformed events, outcomes without an
	// intent, grant workflow problems). Compute carries them into the plan.
	Warnings []Warning
}

// Managed records that jitform added a member to a group.
type Managed struct {
	Grant string
	Since time.Time
}
