target "ldap" "plain" {
  url       = "ldap://dir.example"
  start_tls = false
  base_dn   = "dc=example"
}

target "ldap" "scheme" {
  url     = "https://dir.example"
  base_dn = "dc=example"
  flavor  = "activedirectory"
}

target "ldap" "both" {
  url       = "ldaps://dir.example"
  start_tls = true
  base_dn   = "not a dn"
  bind_dn   = "cn=admin,dc=example"
}

target "ldap" "knobs" {
  url             = "ldaps://dir.example"
  base_dn         = "dc=example"
  user_filter     = "(uid=*)"
  page_size       = 0
  max_concurrency = 1000
  timeout         = "soon"
}

target "ldif" "flavor" {
  path   = "x.ldif"
  flavor = "openldapp"
}
