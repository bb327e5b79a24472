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

grant "alice_chg1042" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "4h"
  ticket      = "CHG1042"
  reason      = "migrate the orders database"
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
