target "ldap" "corp" {
  url     = "ldaps://dc01.corp.example"
  base_dn = "dc=corp,dc=example"
}

target "winrm" "web" {
  hosts    = ["web01", "web02"]
  user     = "svc"
  password = "x"
}

group "typo_target" {
  target = target.ldap.corpp
  dn     = "cn=a,dc=corp,dc=example"
}

group "wrong_kind" {
  target = group.typo_target
  dn     = "cn=b,dc=corp,dc=example"
}

group "quoted" {
  target = "target.ldap.corp"
  dn     = "cn=c,dc=corp,dc=example"
}

group "no_such_host" {
  target = target.winrm.web["web03"]
  name   = "Administrators"
}

group "admins" {
  target = target.ldap.corp
  dn     = "cn=admins,dc=corp,dc=example"
}

policy "p" {
  groups       = [group.admin, target.ldap.corp]
  eligible     = ["alice"]
  max_duration = "1h"
  approvers    = ["carol"]
}

grant "g" {
  policy      = policy.pp
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "1h"
  approved_by = ["carol"]
}

grant "h" {
  policy      = group.admins
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "1h"
  approved_by = ["carol"]
}
