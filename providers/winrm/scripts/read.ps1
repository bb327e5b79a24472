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
function Get-HResult($e) {
  $x = $e
  while ($x) {
    if ($x -is [System.Runtime.InteropServices.COMException]) { break }
    if (-not $x.InnerException) { break }
    $x = $x.InnerException
  }
  '0x{0:X8}' -f [System.Runtime.InteropServices.Marshal]::GetHRForException($x)
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

# User rights are read through the LSA (LsaEnumerateAccountsWithUserRight):
# fixed C# compiled by Add-Type, the right's name passed as an argument.
$LsaCode = '
#LSA#
'
function Use-Lsa { if (-not ('JitformLsa' -as [type])) { Add-Type -TypeDefinition $LsaCode } }

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
      $s.group = [string]$d.group; $s.right = [string]$d.right; $s.account = [string]$d.account; $s.member = [string]$d.member; $s.grant = [string]$d.grant; $s.at = [int64]$d.at
    } catch { $s.error = "the task's description is not jitform's: $($_.Exception.Message)" }
    $switches += ,$s
  }
} catch { $switchError = $_.Exception.Message }
# The holders of each user right, by SID.
$rights = @()
foreach ($x in @($req.rights)) {
  try {
    Use-Lsa
    $holders = @()
    foreach ($sid in @([JitformLsa]::Holders([string]$x.name))) { $holders += @{ sid = $sid; name = (Get-Name $sid) } }
    $rights += ,@{ key = $x.key; holders = $holders }
  } catch {
    $rights += ,@{ key = $x.key; error = $_.Exception.Message }
  }
}
# Local users: exists, and enabled unless UserFlags has ADS_UF_ACCOUNTDISABLE (0x2).
$accounts = @()
foreach ($x in @($req.accounts)) {
  try {
    if ([string]$x.name -match '[,/\\]') { throw "user name has characters ADSI paths cannot carry" }
    $u = [ADSI]('WinNT://./' + [string]$x.name + ',user')
    try { $flags = [int]$u.psbase.InvokeGet('UserFlags') }
    catch {
      if ((Get-HResult $_.Exception) -eq '0x800708AD') { $accounts += ,@{ key = $x.key; exists = $false; enabled = $false }; continue }
      throw
    }
    $accounts += ,@{ key = $x.key; exists = $true; enabled = (($flags -band 0x2) -eq 0) }
  } catch {
    $accounts += ,@{ key = $x.key; error = $_.Exception.Message }
  }
}
ConvertTo-Json -InputObject @{ domain_role = $role; groups = $groups; principals = $principals; switches = $switches; switches_error = $switchError; rights = $rights; accounts = $accounts } -Depth 6 -Compress
