# jitform apply: adds and removes local group members by SID, one result per
# change, in request order. Input: one JSON document (the only parameter),
# never spliced into code. Output: JSON.
#
# Membership is never tested with ADSI IsMember: the WinNT provider compares
# member paths as strings, and a live account's path is WinNT://DOMAIN/name,
# never WinNT://S-1-...; only orphaned SIDs have SID paths. Add and Remove
# with the SID path go through NetLocalGroupAddMembers/DelMembers by SID; the
# COM error code says whether the change was already in place, and the
# members are read again by objectSid to verify every change.
param([string]$Data)
$ErrorActionPreference = 'Stop'
$req = ConvertFrom-Json -InputObject $Data

# HRESULTs that mean "already so". Anything else is a failure.
$AlreadyOnAdd = @('0x80070562', '0x80071392')  # ERROR_MEMBER_IN_ALIAS, ERROR_OBJECT_ALREADY_EXISTS
$AlreadyOnRemove = @('0x80070561')             # ERROR_MEMBER_NOT_IN_ALIAS

function Get-Sid($o) {
  $b = $o.GetType().InvokeMember('objectSid', 'GetProperty', $null, $o, $null)
  (New-Object System.Security.Principal.SecurityIdentifier($b, 0)).Value
}
function Get-Name([string]$sid) {
  try { (New-Object System.Security.Principal.SecurityIdentifier($sid)).Translate([System.Security.Principal.NTAccount]).Value }
  catch { $sid }
}
function Open-Group($g) {
  $name = $g.name
  if ($g.sid) { $name = (Get-Name $g.sid).Split('\')[-1] }
  if ($name -match '[,/\\]') { throw "group name has characters ADSI paths cannot carry" }
  $grp = [ADSI]('WinNT://./' + $name + ',group')
  $sid = Get-Sid $grp.psbase.NativeObject
  if ($g.sid -and $sid -ne $g.sid) { throw "the group bound by name '$name' has SID $sid, not $($g.sid)" }
  $grp
}
function Get-MemberSids($g) {
  $grp = Open-Group $g
  $sids = @()
  foreach ($m in @($grp.psbase.Invoke('Members'))) { $sids += Get-Sid $m }
  $sids
}
# PowerShell wraps a failed COM call in MethodInvocationException (and
# TargetInvocationException): the code that says what happened is the
# COMException's.
function Get-HResult($e) {
  $x = $e
  while ($x) {
    if ($x -is [System.Runtime.InteropServices.COMException]) { break }
    if (-not $x.InnerException) { break }
    $x = $x.InnerException
  }
  '0x{0:X8}' -f [System.Runtime.InteropServices.Marshal]::GetHRForException($x)
}

$role = -1
try { $role = [int](Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole } catch { }

$results = @()
foreach ($c in @($req.changes)) {
  $r = @{ status = 'failed' }
  try {
    if ($c.sid -notmatch '^S-1-[0-9-]+$') { throw "not a SID" }
    if (-not $req.allow_domain_controller -and ($role -ge 4 -or $role -lt 0)) {
      throw "this host is a domain controller (or its role is unknown): its groups are the domain's; refused without allow_domain_controller"
    }
    $grp = Open-Group $c.group
    $path = 'WinNT://' + $c.sid
    try {
      if ($c.action -eq 'add') { $grp.Add($path) } else { $grp.Remove($path) }
      $r.status = 'done'
    } catch {
      $code = Get-HResult $_.Exception
      $known = $AlreadyOnRemove
      if ($c.action -eq 'add') { $known = $AlreadyOnAdd }
      if ($known -notcontains $code) { throw "$($_.Exception.Message) ($code)" }
      $r.status = 'already'
    }
    try { $present = @(Get-MemberSids $c.group) -contains $c.sid }
    catch {
      $r = @{ status = 'unknown'; error = "the change was made but the members could not be read again: $($_.Exception.Message)" }
      $results += ,$r
      continue
    }
    if ($present -ne ($c.action -eq 'add')) {
      $r = @{ status = 'failed'; error = "$($c.action) reported $($r.status), but the group's members read again say otherwise" }
    }
  } catch {
    $r = @{ status = 'failed'; error = $_.Exception.Message }
  }
  $results += ,$r
}
ConvertTo-Json -InputObject @{ results = $results } -Depth 4 -Compress
