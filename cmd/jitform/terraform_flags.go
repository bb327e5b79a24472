package main

import "strings"

// terraformOnly are Terraform flags jitform has no use for, with what to do
// instead: a Terraform user's muscle memory gets an answer, not
// "unknown shorthand flag: 'r'".
var terraformOnly = map[string]string{
	"refresh":        "jitform always reads the real membership before planning; there is nothing to skip",
	"refresh-only":   "jitform has no separate state to refresh: plan reads the real membership every time",
	"lock":           "the state lock is always taken; use --lock-timeout D to wait for another holder",
	"var":            "jitform has no input variables; read values with env(\"NAME\") or file(\"path\") in the HCL",
	"var-file":       "jitform has no input variables; read values with env(\"NAME\") or file(\"path\") in the HCL",
	"replace":        "memberships are not replaced; revoke the grant (jitform grant revoke) or change the HCL",
	"destroy":        "to strip every grant, revoke them (jitform grant revoke) or remove the grant blocks",
	"state":          "the state is .jitform/ beside the config, or a state \"postgres\" block",
	"state-out":      "the state is .jitform/ beside the config, or a state \"postgres\" block",
	"backup":         "the ledger is append-only; back it up with jitform state pull or by copying .jitform/",
	"upgrade":        "jitform has no providers to download; init creates the state",
	"reconfigure":    "jitform init needs no backend reconfiguration",
	"backend-config": "configure shared state with a state \"postgres\" block",
	"chdir":          "put -C DIR (or --chdir DIR) before the command, as with git -C",
}

// terraformFlagHint explains the first Terraform-only flag in args, or "".
func terraformFlagHint(args []string) string {
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if why, ok := terraformOnly[name]; ok {
			return "jitform has no " + arg + "; " + why
		}
	}
	return ""
}
