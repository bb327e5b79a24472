# Every block and most attributes, as docs/language.md shows them.

target "ldap" "corp" {
  url      = "ldaps://dc01.corp.example"
  bind_dn  = "CN=svc-jitform,OU=Service,DC=corp,DC=example"
  password = env("JITFORM_TEST_PASSWORD")
  base_dn  = "DC=corp,DC=example"
  flavor   = "active_directory"
  timeout  = "10s"
}

target "ldap" "lab" {
  url                = "ldap://127.0.0.1:3890"
  start_tls          = false
  insecure_plaintext = true
  base_dn            = "dc=lab,dc=example"
  user_filter        = "(cn=%s)"
  page_size          = 200
  max_concurrency    = 2
}

target "ldif" "export" {
  path = "directory.ldif"
}

target "winrm" "web01" {
  address  = "web01.corp.example"
  user     = "CORP\\svc-jitform"
  password = "literal-winrm-password"
}

target "winrm" "web" {
  hosts    = ["web02", "web03"]
  https    = true
  auth     = "basic"
  user     = "CORP\\svc-jitform"
  password = env("JITFORM_TEST_PASSWORD")
}

group "web01_admins" {
  target    = target.winrm.web01
  name      = "S-1-5-32-544"
  members   = ["CORP\\svc-backup"]
  exclusive = true
}

group "web_admins" {
  target = target.winrm.web
  name   = "Administrators"
}

group "web03_rdp" {
  target = target.winrm.web["web03"]
  name   = "S-1-5-32-555"
}

group "domain_admins" {
  target = target.ldap.corp
  dn     = "CN=Domain Admins,CN=Users,DC=corp,DC=example"
}

group "ops" {
  target      = target.ldif.export
  dn          = "cn=ops,ou=groups,dc=corp,dc=example"
  placeholder = "cn=nobody,dc=corp,dc=example"
}

actor "carol" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICZWrdNaWzB/aW9sgLk1L4mawakGJaNYcSEw4eYjWxed carol@laptop"
}

actor "dave" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnYR3WM+twh6tEKGTFu9js9mEwqfTIltB6xgza7h6hM dave@laptop"
}

policy "web_maintenance" {
  groups         = [group.web01_admins, group.web_admins]
  eligible       = ["alice", "bob", "group:CN=Web Ops,OU=Groups,DC=corp,DC=example"]
  max_duration   = "4h"
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
  windows        = ["Mon-Fri 07:00-19:00 Europe/Berlin", "Sat 09:00-12:00 Europe/Berlin"]

  break_glass {
    max_duration = "1h"
  }
}

policy "domain" {
  groups       = [group.domain_admins, group.ops, group.web03_rdp]
  eligible     = ["alice"]
  max_duration = "1d"
  approvals    = 2
  approvers    = ["carol", "dave"]
  approval     = "ledger"
  request_ttl  = "2h"
  max_active   = 1
}

grant "alice_chg1042" {
  policy      = policy.web_maintenance
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  ticket      = "CHG1042"
  reason      = "patch IIS"
  approved_by = ["carol"]
}

grant "bob_chg1043" {
  policy      = policy.web_maintenance
  principal   = "bob"
  start       = timeadd("2026-11-23T09:00:00Z", "1h30m")
  duration    = "90m"
  ticket      = "CHG1043"
  approved_by = ["dave", "carol"]
}
