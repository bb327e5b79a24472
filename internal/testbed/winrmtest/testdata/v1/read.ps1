# jitform read: resolves principals and reads local groups. Input: one JSON
# document (the only parameter), never spliced into code. Output: JSON.
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
  $null = $grp.Name  # binds now, so a missing group fails here
  $grp
}

$groups = @{}
foreach ($g in @($req.groups)) {
  try {
    $grp = Open-Group $g
    $members = @()
    foreach ($m in @($grp.psbase.Invoke('Members'))) {
      $sid = Get-Sid $m
      $members += @{ sid = $sid; name = (Get-Name $sid) }
    }
    $groups[$g.key] = @{ sid = (Get-Sid $grp.psbase.NativeObject); name = [string]$grp.Name[0]; members = $members }
  } catch {
    $groups[$g.key] = @{ error = $_.Exception.Message }
  }
}
$principals = @{}
foreach ($p in @($req.principals)) {
  try {
    if ($p -match '^S-1-[0-9-]+$') { $sid = (New-Object System.Security.Principal.SecurityIdentifier($p)).Value }
    else { $sid = (New-Object System.Security.Principal.NTAccount($p)).Translate([System.Security.Principal.SecurityIdentifier]).Value }
    $principals[$p] = @{ sid = $sid; name = (Get-Name $sid) }
  } catch {
    $principals[$p] = @{ error = $_.Exception.Message }
  }
}
[Console]::Out.Write((ConvertTo-Json -InputObject @{ groups = $groups; principals = $principals } -Depth 6 -Compress))
