# jitform against Active Directory (or a Samba AD domain controller): LDAPS,
# a service account bound by UPN, principals by sAMAccountName or UPN, and a
# policy whose eligible list is an AD group, nested membership included.
# See README.md.
#
#   export JITFORM_CORP_PASSWORD=...   # the service account's password; never in plans, ledger or logs
#   jitform -C examples/active-directory validate
#   jitform -C examples/active-directory plan

target "ldap" "corp" {
  url      = "ldaps://dc1.example.test" # or ldap://...:389, which uses StartTLS by default
  bind_dn  = "svc-jitform@example.test" # a UPN, a DN or DOMAIN\\user
  password = env("JITFORM_CORP_PASSWORD")
  base_dn  = "DC=example,DC=test"
  flavor   = "active_directory"
  ca_file  = "corp-ca.pem" # your enterprise CA (relative to this directory)
  timeout  = "15s"
}

# AD groups may be empty, so no placeholder is needed.
group "server_admins" {
  target    = target.ldap.corp
  dn        = "CN=Admins,OU=Groups,DC=example,DC=test"
  exclusive = true
}

group "helpdesk" {
  target    = target.ldap.corp
  dn        = "CN=Empty,OU=Groups,DC=example,DC=test"
  exclusive = false
}

# Who may ask: members of Tier1 Admins, directly or through nested groups
# (carol is in Tier2 Admins, which is in Tier1 Admins).
policy "tier1_servers" {
  groups         = [group.server_admins]
  eligible       = ["group:CN=Tier1 Admins,OU=Groups,DC=example,DC=test", "alice"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["bob", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

policy "helpdesk" {
  groups       = [group.helpdesk]
  eligible     = ["dave", "carol@example.test"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["bob"]
}

grant "carol_chg2001" {
  policy      = policy.tier1_servers
  principal   = "carol"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "2h"
  ticket      = "CHG2001"
  reason      = "patch the file servers"
  approved_by = ["bob"]
}

grant "dave_helpdesk" {
  policy      = policy.helpdesk
  principal   = "dave"
  start       = timeadd(plantimestamp(), "-30m")
  duration    = "8h"
  reason      = "covering the helpdesk queue"
  approved_by = ["bob"]
}
