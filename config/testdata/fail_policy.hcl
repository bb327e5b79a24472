target "ldif" "export" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
}

policy "p" {
  groups         = [group.admins, group.admins]
  eligible       = ["alice", "group:not a dn"]
  max_duration   = "4h"
  approvals      = 3
  approvers      = ["carol", "dave", "carol"]
  ticket_pattern = "^CHG[0-9+$"
  approval       = "legder"
}

policy "ledger" {
  groups       = [group.admins]
  eligible     = ["alice"]
  max_duration = "4h"
  approvers    = ["erin"]
  approval     = "ledger"

  break_glass {
    max_duration = "forever"
  }
}
