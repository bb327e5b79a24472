# jitform against an OpenLDAP server: a groupOfNames with a placeholder, a
# posixGroup (how Linux hosts reading LDAP get sudo), and a policy whose
# eligible list names a directory group. See README.md.
#
#   export JITFORM_LDAP_PASSWORD=...   # the bind password; never in plans, ledger or logs
#   jitform -C examples/openldap validate
#   jitform -C examples/openldap plan

target "ldap" "lab" {
  url      = "ldap://127.0.0.1:3890" # lab.sh's server; StartTLS is the default for ldap://
  bind_dn  = "cn=admin,dc=example,dc=org"
  password = env("JITFORM_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap" # principals are uids
  ca_file  = "ca.pem"   # the CA that signed slapd's certificate (relative to this directory)
}

# groupOfNames must keep one member: when the last grant ends, jitform
# leaves the placeholder in the group instead of failing.
group "db_admins" {
  target      = target.ldap.lab
  dn          = "cn=db-admins,ou=groups,dc=example,dc=org"
  members     = ["svc-backup"]
  exclusive   = true
  placeholder = "cn=nobody,dc=example,dc=org"
}

# posixGroup: members are written as memberUid (plain uids); jitform maps
# them to DNs to compare.
group "wheel" {
  target    = target.ldap.lab
  dn        = "cn=wheel,ou=groups,dc=example,dc=org"
  exclusive = false
}

policy "db_maintenance" {
  groups         = [group.db_admins]
  eligible       = ["alice", "bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

# Anyone in the sre group may ask for sudo (direct membership on OpenLDAP).
policy "sudo" {
  groups       = [group.wheel]
  eligible     = ["group:cn=sre,ou=groups,dc=example,dc=org"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["carol"]
}

# JIT impersonation on Linux (sudo-ldap): the sudoUser values of a sudoRole
# entry, managed like a group's members. Exclusive: a sudoUser neither
# declared nor granted is removed. Needs the sudo schema in the directory.
sudo_role "db_root" {
  target    = target.ldap.lab
  dn        = "cn=db-root,ou=SUDOers,dc=example,dc=org"
  members   = []
  exclusive = true
}

# An admin account that exists locked (ppolicy pwdAccountLockedTime) and is
# unlocked only while a grant for it is active; a fresh random password at
# each unlock, delivered age-encrypted to the grant's principal, and again
# at lock.
account "db_jitadmin" {
  target          = target.ldap.lab
  dn              = "uid=jit-admin,ou=people,dc=example,dc=org"
  rotate_password = true
}

# Whoever receives an account password must be a declared actor: it is
# encrypted to this key (jitform grant credential ID --key FILE).
actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbuvazf3bFf4fTWWF33HPyj+cwGqgp2l069iohYH3a8 alice"
}

policy "db_break_fix" {
  groups         = [group.db_admins]
  sudo_roles     = [sudo_role.db_root]
  accounts       = [account.db_jitadmin]
  eligible       = ["alice"]
  max_duration   = "2h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

# JIT account creation and deletion: for each grant under db_schema_change
# an account uid=adm-<principal>-<grant>,ou=jit is created (its password
# delivered only to the grantee), it, not the grantee, joins db_admins for
# the window, and it is deleted after.
account "db_adm" {
  target    = target.ldap.lab
  ephemeral = true
  base      = "ou=jit,dc=example,dc=org"
  pattern   = "adm-{principal}-{grant}"
}

policy "db_schema_change" {
  groups         = [group.db_admins]
  accounts       = [account.db_adm]
  eligible       = ["alice"]
  max_duration   = "2h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

grant "alice_chg1042" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "4h"
  ticket      = "CHG1042"
  reason      = "migrate the orders database"
  approved_by = ["carol"]
}

# alice's break-fix window: sudoUser alice on cn=db-root (bounded by
# sudoNotBefore/sudoNotAfter) and jit-admin unlocked with a fresh password,
# encrypted to alice's key: jitform grant credential alice_breakfix --key ~/.ssh/id_ed25519
grant "alice_breakfix" {
  policy      = policy.db_break_fix
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-10m")
  duration    = "1h"
  ticket      = "CHG1043"
  reason      = "replication stuck on the orders database"
  approved_by = ["carol"]
}

grant "erin_oncall" {
  policy      = policy.sudo
  principal   = "erin"
  start       = timeadd(plantimestamp(), "-30m")
  duration    = "8h"
  reason      = "on call this week"
  approved_by = ["carol"]
}
