target "winrm" "web01" {
  address  = "web01.corp.example"
  user     = "svc"
  password = "x"
}

target "ldif" "dir" {
  path = "directory.ldif"
}

right "typo" {
  target = target.winrm.web01
  name   = "SeBackupPrivilge"
}

right "on_ldif" {
  target = target.ldif.dir
  name   = "SeDebugPrivilege"
}

right "no_name" {
  target = target.winrm.web01
}

right "with_dn" {
  target = target.winrm.web01
  name   = "SeDebugPrivilege"
  dn     = "cn=x,dc=example"
}

right "dup" {
  target = target.winrm.web01
  name   = "SEBACKUPPRIVILEGE"
}

right "dup2" {
  target = target.winrm.web01
  name   = "SeBackupPrivilege"
}

sudo_role "on_winrm" {
  target = target.winrm.web01
  dn     = "cn=x,ou=SUDOers,dc=example,dc=org"
}

sudo_role "no_dn" {
  target = target.ldif.dir
}

sudo_role "bad_dn" {
  target = target.ldif.dir
  dn     = "not a dn"
}

account "win_dn" {
  target = target.winrm.web01
  dn     = "cn=x,dc=example"
}

account "dir_name" {
  target = target.ldif.dir
  name   = "jit-admin"
}

account "ephemeral" {
  target    = target.ldif.dir
  ephemeral = true
  pattern   = "adm-{principal}-{grant}"
}

account "pattern_alone" {
  target  = target.ldif.dir
  dn      = "uid=a,dc=example"
  pattern = "adm-{principal}"
}

account "rotating" {
  target          = target.winrm.web01
  name            = "jit-admin"
  rotate_password = true
}

policy "nothing" {
  eligible     = ["alice"]
  max_duration = "1h"
  approvals    = 0
}

policy "wrong_refs" {
  rights       = [group.x, right.nope, right.dup2, right.dup2]
  sudo_roles   = [sudo_role.nope]
  accounts     = [account.rotating, account.rotatng]
  eligible     = ["alice"]
  max_duration = "1h"
  approvals    = 0
}

policy "rotating" {
  accounts     = [account.rotating]
  eligible     = ["alice"]
  max_duration = "1h"
  approvals    = 0
}

grant "no_actor" {
  policy    = policy.rotating
  principal = "alice"
  start     = "2026-11-23T09:00:00Z"
  duration  = "1h"
}

# Ephemeral accounts: each attribute that cannot work is refused at its line.
account "ephemeral_windows" {
  target    = target.winrm.web01
  ephemeral = true
  base      = "ou=jit,dc=example"
}

account "ephemeral_named" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "ou=jit,dc=example"
  dn        = "uid=x,ou=jit,dc=example"
}

account "ephemeral_no_grant" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "ou=jit2,dc=example"
  pattern   = "adm-{principal}"
}

account "ephemeral_injection" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "ou=jit3,dc=example"
  pattern   = "adm,cn=admins-{grant}"
}

account "ephemeral_placeholder" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "ou=jit4,dc=example"
  pattern   = "adm-{user}-{grant}"
}

account "ephemeral_no_password" {
  target          = target.ldif.dir
  ephemeral       = true
  base            = "ou=jit5,dc=example"
  rotate_password = false
}

account "ephemeral_bad_base" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "not a dn"
}
