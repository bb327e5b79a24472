target "ldif" "export" {
  path = "a.ldif"
}

target "ldif" "export" {
  path = "b.ldif"
}

target "ldap" "export" {
  url      = "ldaps://dc01"
  base_dn  = "dc=example"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=other,dc=example"
}

group "admins_again" {
  target = target.ldif.export
  dn     = "CN=Admins, DC=Example"
}

group "bad name" {
  target = target.ldif.export
  dn     = "cn=x,dc=example"
}
