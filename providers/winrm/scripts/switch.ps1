# jitform dead-man's switch, run by Task Scheduler as SYSTEM. The same bytes
# for every task: the data (group SID, member SID, due time in Unix seconds,
# end_sessions) is in the task's Description as JSON, never in this code.
# Removes each due member from its group (and, with end_sessions, logs off
# its sessions) and deletes its task; a task whose removal failed stays.
$ErrorActionPreference = 'Stop'
$LsaCode = '
#LSA#
'
$now = [int64](([DateTime]::UtcNow - (New-Object DateTime(1970, 1, 1, 0, 0, 0, 'Utc'))).TotalSeconds)
foreach ($t in @(Get-ScheduledTask -TaskPath '\jitform\' -ErrorAction SilentlyContinue)) {
  try {
    $d = ConvertFrom-Json -InputObject $t.Description
    if ([int64]$d.at -gt $now) { continue }
    if ($d.member -notmatch '^S-1-[0-9-]+$') { continue }
    if ($d.account) {
      # An account's switch: a random password, then disabled.
      $u = [ADSI]('WinNT://./' + [string]$d.account + ',user')
      $b = $u.psbase.NativeObject.GetType().InvokeMember('objectSid', 'GetProperty', $null, $u.psbase.NativeObject, $null)
      if ((New-Object Security.Principal.SecurityIdentifier($b, 0)).Value -ne $d.member) { continue }
      $null = $u.psbase.Invoke('SetPassword', [Guid]::NewGuid().ToString('N') + 'aA1!')
      $u.psbase.InvokeSet('UserFlags', ([int]$u.psbase.InvokeGet('UserFlags') -bor 0x2))
      $u.psbase.CommitChanges()
      Unregister-ScheduledTask -TaskPath '\jitform\' -TaskName $t.TaskName -Confirm:$false
      continue
    }
    if ($d.right) {
      if (-not ('JitformLsa' -as [type])) { Add-Type -TypeDefinition $LsaCode }
      $st = [JitformLsa]::Remove([string]$d.right, $d.member)
      if (($st -ne 0) -and (('0x{0:X8}' -f $st) -ne '0xC0000034')) { throw ('LsaRemoveAccountRights: NTSTATUS 0x{0:X8}' -f $st) }
      Unregister-ScheduledTask -TaskPath '\jitform\' -TaskName $t.TaskName -Confirm:$false
      continue
    }
    if ($d.group -notmatch '^S-1-[0-9-]+$') { continue }
    $n = (New-Object Security.Principal.SecurityIdentifier($d.group)).Translate([Security.Principal.NTAccount]).Value.Split('\')[-1]
    $g = [ADSI]('WinNT://./' + $n + ',group')
    $b = $g.psbase.NativeObject.GetType().InvokeMember('objectSid', 'GetProperty', $null, $g.psbase.NativeObject, $null)
    if ((New-Object Security.Principal.SecurityIdentifier($b, 0)).Value -ne $d.group) { continue }
    try { $g.Remove('WinNT://' + $d.member) }
    catch { $x = $_.Exception; while ($x.InnerException) { $x = $x.InnerException }; if ($x.HResult -ne -2147023519) { throw } }  # 0x80070561: not a member
    if ($d.end_sessions -eq $true) {
      $ids = @()
      foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter 'SessionId > 0')) {
        try { $o = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid } catch { continue }
        if ($o.Sid -eq $d.member -and $ids -notcontains [int]$p.SessionId) { $ids += [int]$p.SessionId }
      }
      foreach ($i in $ids) { $null = & logoff.exe ([string]$i) }
    }
    Unregister-ScheduledTask -TaskPath '\jitform\' -TaskName $t.TaskName -Confirm:$false
  } catch { }
}
