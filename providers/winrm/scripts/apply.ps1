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
# NTSTATUS of LsaRemoveAccountRights that means "already so": the account
# holds no right at all. (An add of a held right, or a remove of a right
# not held by an account that holds others, returns success: the holders
# read before the call tell done from already.)
$RightAlreadyOnRemove = @('0xC0000034')        # STATUS_OBJECT_NAME_NOT_FOUND

# User rights go through the LSA: fixed C# compiled by Add-Type; rights and
# SIDs are passed to its methods as arguments.
$LsaCode = '
#LSA#
'
function Use-Lsa { if (-not ('JitformLsa' -as [type])) { Add-Type -TypeDefinition $LsaCode } }

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

# The dead-man's switch (docs/revocation.md). $SwitchScript is a constant:
# jitform puts scripts/switch.ps1 here. Every task runs it as SYSTEM, the
# same bytes for every task; a task's data (group SID, member SID, grant,
# due time) is its Description, JSON, read by the switch as data.
$SwitchScript = @'
#SWITCH#
'@
$SwitchAction = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ' + [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($SwitchScript))
# One switch per membership: \jitform\<first 8 bytes of SHA-256(GROUPSID|MEMBERSID), hex>.
function Get-SwitchName([string]$group, [string]$member) {
  $h = [Security.Cryptography.SHA256]::Create().ComputeHash([Text.Encoding]::ASCII.GetBytes($group.ToUpper() + '|' + $member.ToUpper()))
  -join ($h[0..7] | ForEach-Object { $_.ToString('x2') })
}
function Register-Switch([string]$group, [string]$member, $c) {
  $at = [int64]$c.switch_at
  $desc = ConvertTo-Json -Compress -InputObject @{ grant = [string]$c.grant; group = $group; member = $member; at = $at; right = [string]$c.right; account = [string]$c.account; end_sessions = ($c.end_sessions -eq $true) }
  $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $SwitchAction
  $when = (New-Object DateTime(1970, 1, 1, 0, 0, 0, 'Utc')).AddSeconds($at).ToLocalTime()
  $trigger = New-ScheduledTaskTrigger -Once -At $when
  $principal = New-ScheduledTaskPrincipal -UserId 'S-1-5-18' -LogonType ServiceAccount -RunLevel Highest
  $settings = New-ScheduledTaskSettingsSet -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit (New-TimeSpan -Minutes 10)
  $null = Register-ScheduledTask -TaskPath '\jitform\' -TaskName (Get-SwitchName $group $member) -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Description $desc -Force
}
function Unregister-Switch([string]$group, [string]$member) {
  $name = Get-SwitchName $group $member
  if (-not (Get-ScheduledTask -TaskPath '\jitform\' -TaskName $name -ErrorAction SilentlyContinue)) { return 'none' }
  Unregister-ScheduledTask -TaskPath '\jitform\' -TaskName $name -Confirm:$false
  'deleted'
}
# end_sessions: logs off every session (console or RDP, connected or not)
# that runs a process owned by the SID; returns how many.
function End-Sessions([string]$sid) {
  $ids = @()
  foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter 'SessionId > 0')) {
    try { $o = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid } catch { continue }
    if ($o.Sid -eq $sid -and $ids -notcontains [int]$p.SessionId) { $ids += [int]$p.SessionId }
  }
  foreach ($i in $ids) {
    $null = & logoff.exe ([string]$i)
    if ($LASTEXITCODE -ne 0) { throw "logoff of session $i exited $LASTEXITCODE" }
  }
  $ids.Count
}

$role = -1
try { $role = [int](Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole } catch { }

# One change of a user right's holders, by SID, classified like a group's:
# done, already, failed (with the NTSTATUS), unknown when the holders
# cannot be read again. The switch is registered before the right is added.
function Set-Right($c) {
  $r = @{ status = 'failed' }
  $registered = $false
  try {
    if ($c.sid -notmatch '^S-1-[0-9-]+$') { throw "not a SID" }
    if (-not $req.allow_domain_controller -and ($role -ge 4 -or $role -lt 0)) {
      throw "this host is a domain controller (or its role is unknown): its local security policy is the domain controllers'; refused without allow_domain_controller"
    }
    Use-Lsa
    $right = [string]$c.right
    $before = @([JitformLsa]::Holders($right)) -contains $c.sid
    if ($c.action -eq 'add' -and $c.switch_at) {
      try { Register-Switch $c.right $c.sid $c; $registered = $true }
      catch { throw "the dead-man's switch could not be registered, so the right was not granted: $($_.Exception.Message)" }
    }
    if ($c.action -eq 'add') { $st = [JitformLsa]::Add($right, $c.sid); $call = 'LsaAddAccountRights' }
    else { $st = [JitformLsa]::Remove($right, $c.sid); $call = 'LsaRemoveAccountRights' }
    $code = '0x{0:X8}' -f $st
    if ($st -eq 0) {
      $r.status = 'done'
      if ($before -eq ($c.action -eq 'add')) { $r.status = 'already' }
    } elseif ($c.action -eq 'remove' -and $RightAlreadyOnRemove -contains $code) {
      $r.status = 'already'
    } else { throw [JitformLsa]::Message($call, $st) }
    if ($registered) { $r.switch = 'registered' }
    try { $present = @([JitformLsa]::Holders($right)) -contains $c.sid }
    catch {
      $r.status = 'unknown'
      $r.error = "the change was made but the right's holders could not be read again: $($_.Exception.Message)"
      return $r
    }
    if ($present -ne ($c.action -eq 'add')) {
      throw "$call reported $($r.status), but the right's holders read again say otherwise"
    }
    if (-not $registered) {
      try { $r.switch = Unregister-Switch $c.right $c.sid } catch { $r.switch_error = $_.Exception.Message }
    }
  } catch {
    $r = @{ status = 'failed'; error = $_.Exception.Message }
    if ($registered) {
      try { $r.switch = Unregister-Switch $c.right $c.sid } catch { $r.switch_error = $_.Exception.Message }
    }
  }
  $r
}

$results = @()
foreach ($c in @($req.changes)) {
  if ($c.right) { $results += ,(Set-Right $c); continue }
  $r = @{ status = 'failed' }
  $gsid = $null
  $registered = $false
  try {
    if ($c.sid -notmatch '^S-1-[0-9-]+$') { throw "not a SID" }
    if (-not $req.allow_domain_controller -and ($role -ge 4 -or $role -lt 0)) {
      throw "this host is a domain controller (or its role is unknown): its groups are the domain's; refused without allow_domain_controller"
    }
    $grp = Open-Group $c.group
    $gsid = Get-Sid $grp.psbase.NativeObject
    $path = 'WinNT://' + $c.sid
    # The switch is registered before the member is added, so a run that
    # dies after the add still leaves it; no switch, no add.
    if ($c.action -eq 'add' -and $c.switch_at) {
      try { Register-Switch $gsid $c.sid $c; $registered = $true }
      catch { throw "the dead-man's switch could not be registered, so the member was not added: $($_.Exception.Message)" }
    }
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
    if ($registered) { $r.switch = 'registered' }
    try { $present = @(Get-MemberSids $c.group) -contains $c.sid }
    catch {
      $r.status = 'unknown'
      $r.error = "the change was made but the members could not be read again: $($_.Exception.Message)"
      $results += ,$r
      continue
    }
    if ($present -ne ($c.action -eq 'add')) {
      throw "$($c.action) reported $($r.status), but the group's members read again say otherwise"
    }
    # Removed (or added for good): its switch has no more work.
    if (-not $registered) {
      try { $r.switch = Unregister-Switch $gsid $c.sid } catch { $r.switch_error = $_.Exception.Message }
    }
    if ($c.action -eq 'remove' -and $c.end_sessions) {
      try { $r.sessions = End-Sessions $c.sid } catch { $r.sessions_error = $_.Exception.Message }
    }
  } catch {
    $r = @{ status = 'failed'; error = $_.Exception.Message }
    if ($registered) {
      # The member is not there: the switch would guard nothing.
      try { $r.switch = Unregister-Switch $gsid $c.sid } catch { $r.switch_error = $_.Exception.Message }
    }
  }
  $results += ,$r
}
# Local users: set the password (when given) first, then enable or disable
# through UserFlags (ADS_UF_ACCOUNTDISABLE, 0x2), then read the flags again.
# The password is data: never echoed back, and scrubbed from any error.
$accounts = @()
foreach ($x in @($req.accounts)) {
  $r = @{ status = 'failed' }
  $registered = $false
  $usid = $null
  try {
    if (-not $req.allow_domain_controller -and ($role -ge 4 -or $role -lt 0)) {
      throw "this host is a domain controller (or its role is unknown): its local users are the domain's; refused without allow_domain_controller"
    }
    if ([string]$x.name -match '[,/\\]') { throw "user name has characters ADSI paths cannot carry" }
    $u = [ADSI]('WinNT://./' + [string]$x.name + ',user')
    $flags = [int]$u.psbase.InvokeGet('UserFlags')
    $was = ($flags -band 0x2) -eq 0
    $usid = Get-Sid $u.psbase.NativeObject
    # The switch is registered before the account is enabled: no switch,
    # no enable.
    if ($x.enable -and $x.switch_at) {
      try { Register-Switch 'ACCOUNT' $usid $x; $registered = $true }
      catch { throw "the dead-man's switch could not be registered, so the account was not enabled: $($_.Exception.Message)" }
    }
    if ($x.password) { $null = $u.psbase.Invoke('SetPassword', [string]$x.password) }
    if ($x.enable) { $flags = $flags -band (-bnot 0x2) } else { $flags = $flags -bor 0x2 }
    $u.psbase.InvokeSet('UserFlags', $flags)
    $u.psbase.CommitChanges()
    $r.status = 'done'
    if (-not $x.password -and $was -eq [bool]$x.enable) { $r.status = 'already' }
    try { $now = ([int]([ADSI]('WinNT://./' + [string]$x.name + ',user')).psbase.InvokeGet('UserFlags') -band 0x2) -eq 0 }
    catch {
      $r = @{ status = 'unknown'; error = "the account was changed but its flags could not be read again: $($_.Exception.Message)" }
      if ($x.password) { $r.error = $r.error.Replace([string]$x.password, '(sensitive)') }
      $accounts += ,$r
      continue
    }
    if ($now -ne [bool]$x.enable) { throw "the account's flags read again say it is not $(if ($x.enable) { 'enabled' } else { 'disabled' })" }
    if ($registered) { $r.switch = 'registered' }
    else { try { $r.switch = Unregister-Switch 'ACCOUNT' $usid } catch { $r.switch_error = $_.Exception.Message } }
  } catch {
    $msg = $_.Exception.Message
    if ($x.password) { $msg = $msg.Replace([string]$x.password, '(sensitive)') }
    $r = @{ status = 'failed'; error = $msg }
    if ($registered) {
      try { $r.switch = Unregister-Switch 'ACCOUNT' $usid } catch { $r.switch_error = $_.Exception.Message }
    }
  }
  $accounts += ,$r
}
ConvertTo-Json -InputObject @{ results = $results; accounts = $accounts } -Depth 4 -Compress
