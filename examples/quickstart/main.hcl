# jitform quickstart: a policy repository planned against an LDIF file, so it
# runs with no directory server. Try:
#   go run ./cmd/jitform -C examples/quickstart plan
#
# The grants below are written relative to plantimestamp() (the time the plan
# is made), so they are "active now" whenever you try this. Real grants use
# fixed RFC 3339 times; jitform warns about windows that move with the clock.

target "ldif" "directory" {
  path   = "directory.ldif"
  flavor = "openldap"
}

# Exclusive: anyone neither declared nor granted is removed.
group "db_admins" {
  target    = target.ldif.directory
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  members   = ["svc-backup"]
  exclusive = true
}

# Non-exclusive: jitform adds granted members and removes only those it added.
group "web_admins" {
  target    = target.ldif.directory
  dn        = "cn=web-admins,ou=groups,dc=example,dc=org"
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

policy "web_oncall" {
  groups       = [group.web_admins]
  eligible     = ["dave", "erin"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["carol"]
}

# Active now: started an hour ago, ends in three hours. Plan adds alice.
grant "alice_chg1042" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "4h"
  ticket      = "CHG1042"
  reason      = "migrate the orders database"
  approved_by = ["carol"]
}

# Ended: ran from five to three hours ago. bob is still in db_admins, so the
# plan removes him because his window ended.
grant "bob_chg1001" {
  policy      = policy.db_maintenance
  principal   = "bob"
  start       = timeadd(plantimestamp(), "-5h")
  duration    = "2h"
  ticket      = "CHG1001"
  reason      = "rotate replication credentials"
  approved_by = ["dave"]
}

# Active now on the non-exclusive group: plan adds dave and leaves erin,
# whom jitform did not add, alone.
grant "dave_oncall" {
  policy      = policy.web_oncall
  principal   = "dave"
  start       = timeadd(plantimestamp(), "-30m")
  duration    = "8h"
  reason      = "on call this week"
  approved_by = ["carol"]
}
