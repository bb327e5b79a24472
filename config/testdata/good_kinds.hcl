target "winrm" "web01" {
  address  = "web01.corp.example"
  user     = "svc"
  password = "x"
}

target "winrm" "web" {
  hosts    = ["web02", "web03"]
  user     = "svc"
  password = "x"
}

target "ldif" "dir" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.dir
  dn     = "cn=admins,ou=groups,dc=example,dc=org"
}

right "web01_backup" {
  target    = target.winrm.web01
  name      = "sebackupprivilege"
  members   = ["CORP\\svc-backup"]
  exclusive = true
}

right "web_rdp" {
  target = target.winrm.web
  name   = "SeRemoteInteractiveLogonRight"
}

sudo_role "db_root" {
  target    = target.ldif.dir
  dn        = "cn=db-root,ou=SUDOers,dc=example,dc=org"
  exclusive = true
}

account "web01_jitadmin" {
  target          = target.winrm.web01
  name            = "jit-admin"
  rotate_password = true
}

account "dir_admin" {
  target = target.ldif.dir
  dn     = "uid=jit-admin,ou=people,dc=example,dc=org"
}

actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPx3IK13qWX24y2ZMVP0SfDXIF17ZwiooLqESm7nQ2Q6 alice@test"
}

policy "break_fix" {
  rights     = [right.web01_backup, right.web_rdp]
  accounts   = [account.web01_jitadmin, account.dir_admin]
  sudo_roles = [sudo_role.db_root]
  eligible   = ["alice", "CORP\\alice"]
  max_duration = "4h"
  approvals  = 0
}

policy "groups_only" {
  groups       = [group.admins]
  eligible     = ["bob"]
  max_duration = "1h"
  approvals    = 0
}

grant "alice_fix" {
  policy    = policy.break_fix
  principal = "alice"
  start     = "2026-11-23T09:00:00Z"
  duration  = "2h"
}

# The actor for CORP\alice is alice: the principal without its domain.
grant "corp_alice_fix" {
  policy    = policy.break_fix
  principal = "CORP\\alice"
  start     = "2026-11-23T12:00:00Z"
  duration  = "1h"
}
