target "ldif" "export" {
  path = "directory.ldif"

group "admins" {
