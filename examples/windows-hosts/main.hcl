# Just-in-time local administrators on a fleet of Windows web servers.
#
# One target block declares three hosts; the group below exists once per
# host (group.web_admins["web01.corp.example"] and so on), and one policy
# spans them all.

target "winrm" "web" {
  hosts    = ["web01.corp.example", "web02.corp.example", "web03.corp.example"]
  https    = true          # port 5986, certificate verified
  ca_file  = "corp-ca.pem" # the CA that signed the hosts' WinRM certificates
  auth     = "ntlm"
  user     = "CORP\\svc-jitform"
  password = env("JITFORM_WINRM_PASSWORD")
  timeout  = "30s"
}

# Administrators by SID: the same on English, German or French Windows.
group "web_admins" {
  target    = target.winrm.web
  name      = "S-1-5-32-544"
  members   = ["CORP\\svc-backup"] # standing, declared
  exclusive = true                 # anyone else (except grants) is removed
}

# Remote Desktop Users: only what jitform added is ever removed.
group "web_rdp" {
  target = target.winrm.web
  name   = "S-1-5-32-555"
}

actor "carol" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTkIovp8sTyAsC0WJHqy1FDZ8SHFU2gz0cnlUcJ8C4v carol"
}

policy "web_maintenance" {
  groups         = [group.web_admins, group.web_rdp]
  eligible       = ["CORP\\alice", "CORP\\bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol"]
  ticket_pattern = "^CHG[0-9]+$"
  windows        = ["Mon-Fri 07:00-19:00 Europe/Berlin"]
}

grant "alice_chg1042" {
  policy      = policy.web_maintenance
  principal   = "CORP\\alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  ticket      = "CHG1042"
  reason      = "patch IIS on the web tier"
  approved_by = ["carol"]
}

# A Windows user right (local security policy), granted like a group: the
# holders of SeBackupPrivilege on web01. Non-exclusive: only holders jitform
# added are ever removed. Rights are read and changed through the LSA.
right "web01_backup" {
  target = target.winrm.web["web01.corp.example"]
  name   = "SeBackupPrivilege"
}

# An admin account that exists disabled and is enabled only while a grant
# for it is active (PAM360's password check-out, BeyondTrust's JIT-disabled
# administration accounts). With rotate_password, jitform sets a fresh
# random password at each enable, delivered age-encrypted to the grant's
# principal only (jitform grant credential ID --key FILE), and another at
# disable, so the password seen in the window is dead after it.
account "web01_jitadmin" {
  target          = target.winrm.web["web01.corp.example"]
  name            = "jit-admin"
  rotate_password = true
}

# The grant's principal receives the password encrypted to this key; the
# actor for CORP\alice is "alice" (the principal without its domain).
actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbuvazf3bFf4fTWWF33HPyj+cwGqgp2l069iohYH3a8 alice"
}

policy "web01_break_fix" {
  rights         = [right.web01_backup]
  accounts       = [account.web01_jitadmin]
  eligible       = ["CORP\\alice"]
  max_duration   = "2h"
  approvals      = 1
  approvers      = ["carol"]
  ticket_pattern = "^CHG[0-9]+$"
}
