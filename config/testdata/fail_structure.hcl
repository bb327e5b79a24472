# Unknown blocks and attributes, missing required attributes.

resource "ldap" "corp" {
}

target "ldif" "export" {
  path   = "directory.ldif"
  flavour = "openldap"
}

group "admins" {
  target = target.ldif.export
}

policy "p" {
  groups   = [group.admins]
  eligible = ["alice"]
}

grant "g" {
  policy    = policy.p
  principal = "alice"
  start     = "2026-11-23T09:00:00Z"
}

actor "carol" {
  ssh_key = "not a key"
}

group "orphan" {
  dn = "cn=orphan,dc=example,dc=org"
}

policy "no_groups" {
  eligible     = ["alice"]
  max_duration = "1h"
  approvals    = 0
}

grant "no_policy" {
  principal = "alice"
  start     = "2026-11-23T09:00:00Z"
  duration  = "1h"
}
