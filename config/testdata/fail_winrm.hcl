target "winrm" "both" {
  address  = "web01"
  hosts    = ["web02"]
  user     = "svc"
  password = "x"
}

target "winrm" "neither" {
  user     = "svc"
  password = "x"
}

target "winrm" "http" {
  address  = "web01"
  https    = false
  auth     = "kerberos"
  user     = "svc"
  password = ""
}

target "winrm" "hosts" {
  hosts    = ["web01", "WEB01", "https://web02"]
  port     = 70000
  user     = "svc"
  password = "x"
}

group "on_winrm" {
  target      = target.winrm.hosts
  dn          = "cn=x,dc=example"
  placeholder = "cn=y,dc=example"
}
