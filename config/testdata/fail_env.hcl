target "ldap" "corp" {
  url      = "ldaps://dc01.corp.example"
  bind_dn  = env("JITFORM_BIND_DN")
  password = env("JITFORM_TEST_UNSET")
  base_dn  = "dc=corp,dc=example"
}

target "ldif" "export" {
  path = file("no-such-file.txt")
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
  name   = target.ldap.corp
}
