# Grants that load but break their policy: CheckGrants reports each at the
# attribute at fault.

target "ldif" "export" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
}

actor "carol" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICZWrdNaWzB/aW9sgLk1L4mawakGJaNYcSEw4eYjWxed carol@laptop"
}

policy "web" {
  groups         = [group.admins]
  eligible       = ["alice", "bob"]
  max_duration   = "4h"
  approvals      = 2
  approvers      = ["alice", "carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
  windows        = ["Mon-Fri 07:00-19:00 Europe/Berlin"]
  max_active     = 1
}

policy "signed" {
  groups       = [group.admins]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
}

# 2026-11-23 is a Monday; 17:00Z is 18:00 in Berlin, so 3h runs past 19:00.
grant "too_long_and_late" {
  policy      = policy.web
  principal   = "alice"
  start       = "2026-11-23T17:00:00Z"
  duration    = "5h"
  ticket      = "INC1"
  approved_by = ["carol", "dave"]
}

grant "self_and_stranger" {
  policy      = policy.web
  principal   = "alice"
  start       = "2026-11-24T08:00:00Z"
  duration    = "1h"
  ticket      = "CHG7"
  approved_by = ["alice", "mallory", "carol"]
}

grant "not_eligible" {
  policy      = policy.web
  principal   = "eve"
  start       = "2026-11-25T08:00:00Z"
  duration    = "1h"
  approved_by = ["carol", "dave"]
}

grant "overlaps_self" {
  policy      = policy.web
  principal   = "alice"
  start       = "2026-11-24T08:30:00Z"
  duration    = "1h"
  ticket      = "CHG8"
  approved_by = ["carol", "dave"]
}

grant "ledger_only" {
  policy      = policy.signed
  principal   = "alice"
  start       = "2026-11-24T08:00:00Z"
  duration    = "1h"
  approved_by = ["carol"]
}
