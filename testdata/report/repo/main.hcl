# Fixture for the golden exposure reports (testdata/report/*.golden).
# Regenerate with: go test ./cmd/jitform -run TestReportGolden -update

target "ldif" "directory" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "db_admins" {
  target    = target.ldif.directory
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  members   = ["svc-backup"]
  exclusive = true
}

group "web_admins" {
  target    = target.ldif.directory
  dn        = "cn=web-admins,ou=groups,dc=example,dc=org"
  exclusive = false
}

actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMGvsTcsVunPMihB0JSkq0zQEXWsRekl/t8sw178RksM"
}

actor "bob" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICaXYloAkdi6mElE8XQGVDijJjW/unxiu72afJCfKad1"
}

actor "carol" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF1uM9UdJ/aMwzk+Kh+jjpUo7gXEqH/QLCjrnokLPuLt"
}

actor "dave" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8CnjM0vb/y2Mt+NDpFW+5pdm+GqDXY0NjmBC+EwuQ0"
}

actor "erin" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKGxbKwtUD2moPDdW5r9L3aTuucxvdsuEGDcGFJw/wn3"
}


policy "db_maintenance" {
  groups         = [group.db_admins]
  eligible       = ["alice", "bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

policy "db_oncall" {
  groups         = [group.db_admins]
  eligible       = ["bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
  approval       = "ledger"
}

policy "web_oncall" {
  groups       = [group.web_admins]
  eligible     = ["dave", "erin"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
  break_glass {
    max_duration = "2h"
  }
}

grant "alice_chg1042" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = "2026-11-17T09:00:00Z"
  duration    = "2h"
  ticket      = "CHG1042"
  reason      = "migrate the orders database"
  approved_by = ["carol"]
}

grant "alice_chg1077" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = "2026-11-22T14:00:00Z"
  duration    = "2h"
  ticket      = "CHG1077"
  reason      = "vacuum the orders database"
  approved_by = ["dave"]
}
