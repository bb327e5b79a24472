# jitform apply: adds and removes local group members by SID, one result per
# change. Input: one JSON document (the only parameter), never spliced into
# code. Output: JSON.
param([string]$Data)
$ErrorActionPreference = 'Stop'
$req = ConvertFrom-Json -InputObject $Data

function Get-Name([string]$sid) {
  try { (New-Object System.Security.Principal.SecurityIdentifier($sid)).Translate([System.Security.Principal.NTAccount]).Value }
  catch { $sid }
}
function Open-Group($g) {
  $name = $g.name
  if ($g.sid) { $name = (Get-Name $g.sid).Split('\')[-1] }
  if ($name -match '[,/\\]') { throw "group name has characters ADSI paths cannot carry" }
  $grp = [ADSI]('WinNT://./' + $name + ',group')
  $null = $grp.Name
  $grp
}

$results = @()
foreach ($c in @($req.changes)) {
  try {
    if ($c.sid -notmatch '^S-1-[0-9-]+$') { throw "not a SID" }
    $grp = Open-Group $c.group
    $path = 'WinNT://' + $c.sid
    $is = $grp.IsMember($path)
    if ($c.action -eq 'add') {
      if ($is) { $results += @{ status = 'already' } } else { $grp.Add($path); $results += @{ status = 'done' } }
    } else {
      if (-not $is) { $results += @{ status = 'already' } } else { $grp.Remove($path); $results += @{ status = 'done' } }
    }
  } catch {
    $results += @{ status = 'failed'; error = $_.Exception.Message }
  }
}
[Console]::Out.Write((ConvertTo-Json -InputObject @{ results = $results } -Depth 4 -Compress))
