# jitform read: resolves principals and reads local groups. Input: one JSON
# document (the only parameter), never spliced into code. Output: JSON, one
# answer per group and per principal in request order (never keyed by name:
# PowerShell hashtables fold keys that differ only in case), each echoing
# what it answers.
param([string]$Data)
$ErrorActionPreference = 'Stop'
$req = ConvertFrom-Json -InputObject $Data

function Get-Sid($o) {
  $b = $o.GetType().InvokeMember('objectSid', 'GetProperty', $null, $o, $null)
  (New-Object System.Security.Principal.SecurityIdentifier($b, 0)).Value
}
function Get-Name([string]$sid) {
  try { (New-Object System.Security.Principal.SecurityIdentifier($sid)).Translate([System.Security.Principal.NTAccount]).Value }
  catch { $sid }  # an orphaned SID has no name; it is still a member
}
function Open-Group($g) {
  $name = $g.name
  if ($g.sid) { $name = (Get-Name $g.sid).Split('\')[-1] }
  if ($name -match '[,/\\]') { throw "group name has characters ADSI paths cannot carry" }
  $grp = [ADSI]('WinNT://./' + $name + ',group')
  $sid = Get-Sid $grp.psbase.NativeObject  # binds now, so a missing group fails here
  if ($g.sid -and $sid -ne $g.sid) { throw "the group bound by name '$name' has SID $sid, not $($g.sid)" }
  $grp
}

# 4 and 5: a domain controller, whose groups are the domain's.
$role = -1
try { $role = [int](Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole } catch { }

$groups = @()
foreach ($g in @($req.groups)) {
  try {
    $grp = Open-Group $g
    $members = @()
    foreach ($m in @($grp.psbase.Invoke('Members'))) {
      $sid = Get-Sid $m
      $members += @{ sid = $sid; name = (Get-Name $sid) }
    }
    $groups += ,@{ key = $g.key; sid = (Get-Sid $grp.psbase.NativeObject); name = [string]$grp.Name[0]; members = $members }
  } catch {
    $groups += ,@{ key = $g.key; error = $_.Exception.Message }
  }
}
$principals = @()
foreach ($p in @($req.principals)) {
  try {
    if ($p -match '^S-1-[0-9-]+$') { $sid = (New-Object System.Security.Principal.SecurityIdentifier($p)).Value }
    else { $sid = (New-Object System.Security.Principal.NTAccount($p)).Translate([System.Security.Principal.SecurityIdentifier]).Value }
    $principals += ,@{ principal = $p; sid = $sid; name = (Get-Name $sid) }
  } catch {
    $principals += ,@{ principal = $p; error = $_.Exception.Message }
  }
}
# Pending dead-man's switches (docs/revocation.md): jitform's scheduled
# tasks, with the data each carries in its Description.
$switches = @()
$switchError = ''
try {
  foreach ($t in @(Get-ScheduledTask -TaskPath '\jitform\' -ErrorAction SilentlyContinue)) {
    $s = @{ name = $t.TaskPath + $t.TaskName; trigger = [string]$t.Triggers[0].StartBoundary }
    try {
      $d = ConvertFrom-Json -InputObject $t.Description
      $s.group = [string]$d.group; $s.member = [string]$d.member; $s.grant = [string]$d.grant; $s.at = [int64]$d.at
    } catch { $s.error = "the task's description is not jitform's: $($_.Exception.Message)" }
    $switches += ,$s
  }
} catch { $switchError = $_.Exception.Message }
ConvertTo-Json -InputObject @{ domain_role = $role; groups = $groups; principals = $principals; switches = $switches; switches_error = $switchError } -Depth 6 -Compress
