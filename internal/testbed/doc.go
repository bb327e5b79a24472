// Package testbed holds, in its subpackages, the harnesses tests run
// jitform against: real servers started per test (slapdtest: OpenLDAP;
// sambatest: a Samba AD domain controller; pgtest: PostgreSQL), protocol-level
// fakes where no real peer can run here (winrmtest: WS-Management for the
// real WinRM client; ldapfake: an LDAP server that truncates ranged reads and
// expires linked values like Windows), and testca, the throwaway CA they
// share. Nothing in the production path imports them.
package testbed
