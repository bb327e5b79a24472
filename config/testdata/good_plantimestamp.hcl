# The quickstart's trick: a grant that is always active. Load warns.

target "ldif" "demo" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.demo
  dn     = "cn=admins,dc=demo"
}

policy "demo" {
  groups       = [group.admins]
  eligible     = ["alice"]
  max_duration = "8h"
  approvers    = ["carol"]
}

grant "alice_demo" {
  policy      = policy.demo
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "4h"
  approved_by = ["carol"]
}
