target "ldif" "export" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
}

policy "p" {
  groups       = [group.admins]
  eligible     = ["alice"]
  max_duration = "4 hours"
  approvers    = ["carol"]
  request_ttl  = "-1h"
  windows      = ["Mon-Fri 07:00-19:00 Mars/Olympus", "Mon-Fryday 07:00-19:00 UTC", "Mon 24:00-02:00 UTC", "Mon 07:00-07:00 UTC", "Mon 7-19 UTC"]
}

grant "local_time" {
  policy      = policy.p
  principal   = "alice"
  start       = "2026-11-23T10:00:00+01:00"
  duration    = "2h"
  approved_by = ["carol"]
}

grant "not_a_time" {
  policy      = policy.p
  principal   = "alice"
  start       = "tomorrow"
  duration    = "0s"
  approved_by = ["carol"]
}
