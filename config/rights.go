package config

import "strings"

// WindowsRights are the names a right block accepts: Microsoft's
// "Privilege Constants" (SeXxxPrivilege) and "Account Rights Constants"
// (logon rights, SeXxxLogonRight), as documented for the LSA policy
// functions (LsaAddAccountRights and friends), which take exactly these
// strings. Names compare case-insensitively; the spelling here is kept.
var WindowsRights = []string{
	// Privilege constants.
	"SeAssignPrimaryTokenPrivilege",
	"SeAuditPrivilege",
	"SeBackupPrivilege",
	"SeChangeNotifyPrivilege",
	"SeCreateGlobalPrivilege",
	"SeCreatePagefilePrivilege",
	"SeCreatePermanentPrivilege",
	"SeCreateSymbolicLinkPrivilege",
	"SeCreateTokenPrivilege",
	"SeDebugPrivilege",
	"SeDelegateSessionUserImpersonatePrivilege",
	"SeEnableDelegationPrivilege",
	"SeImpersonatePrivilege",
	"SeIncreaseBasePriorityPrivilege",
	"SeIncreaseQuotaPrivilege",
	"SeIncreaseWorkingSetPrivilege",
	"SeLoadDriverPrivilege",
	"SeLockMemoryPrivilege",
	"SeMachineAccountPrivilege",
	"SeManageVolumePrivilege",
	"SeProfileSingleProcessPrivilege",
	"SeRelabelPrivilege",
	"SeRemoteShutdownPrivilege",
	"SeRestorePrivilege",
	"SeSecurityPrivilege",
	"SeShutdownPrivilege",
	"SeSyncAgentPrivilege",
	"SeSystemEnvironmentPrivilege",
	"SeSystemProfilePrivilege",
	"SeSystemtimePrivilege",
	"SeTakeOwnershipPrivilege",
	"SeTcbPrivilege",
	"SeTimeZonePrivilege",
	"SeTrustedCredManAccessPrivilege",
	"SeUndockPrivilege",
	"SeUnsolicitedInputPrivilege",
	// Account rights constants (logon rights).
	"SeBatchLogonRight",
	"SeDenyBatchLogonRight",
	"SeDenyInteractiveLogonRight",
	"SeDenyNetworkLogonRight",
	"SeDenyRemoteInteractiveLogonRight",
	"SeDenyServiceLogonRight",
	"SeInteractiveLogonRight",
	"SeNetworkLogonRight",
	"SeRemoteInteractiveLogonRight",
	"SeServiceLogonRight",
}

// CanonicalRight returns the documented spelling of a right's name, and
// false when it is not a known privilege or logon right.
func CanonicalRight(name string) (string, bool) {
	for _, r := range WindowsRights {
		if strings.EqualFold(r, name) {
			return r, true
		}
	}
	return "", false
}
