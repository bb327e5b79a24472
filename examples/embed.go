// Package examples holds the example policy repositories, and embeds the
// ones `jitform init --example` scaffolds a new repository from.
package examples

import "embed"

// FS holds the scaffoldable examples, one folder each.
//
//go:embed quickstart/main.hcl quickstart/directory.ldif quickstart/README.md
//go:embed openldap/main.hcl openldap/README.md openldap/seed.ldif openldap/lab.sh
//go:embed active-directory/main.hcl active-directory/README.md
//go:embed windows-hosts/main.hcl windows-hosts/README.md
var FS embed.FS

// Scaffolds maps the names `init --example` takes to their folders in FS.
var Scaffolds = map[string]string{
	"ldif":             "quickstart",
	"ldap":             "openldap",
	"active-directory": "active-directory",
	"winrm":            "windows-hosts",
}
