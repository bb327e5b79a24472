package main

import (
	"context"
	"fmt"
	"strings"
)

const completionUsage = `
Usage: jitform completion bash|zsh|fish|powershell

Prints a shell completion script: command names, subcommands (grant, ledger,
state) and each command's flags, which the script reads from
"jitform CMD --help" so they never drift from the binary.

Examples:
  source <(jitform completion bash)                                 # this shell
  jitform completion bash > /etc/bash_completion.d/jitform
  jitform completion zsh > "${fpath[1]}/_jitform"
  jitform completion fish > ~/.config/fish/completions/jitform.fish
  jitform completion powershell | Out-String | Invoke-Expression
`

// subcommands are the second words some commands take.
var subcommands = map[string][]string{
	"grant":  {"request", "approve", "deny", "revoke", "review", "list", "show"},
	"ledger": {"verify", "log", "checkpoint"},
	"state":  {"push", "pull"},
}

func cmdCompletion(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("completion", completionUsage)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("completion takes one shell: bash, zsh, fish or powershell")
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	cmds := strings.Join(names, " ")
	var subs strings.Builder
	switch shell := fs.Arg(0); shell {
	case "bash", "zsh":
		for _, c := range []string{"grant", "ledger", "state"} {
			fmt.Fprintf(&subs, "    %s) subs=%q ;;\n", c, strings.Join(subcommands[c], " "))
		}
		script := strings.ReplaceAll(bashCompletion, "@CMDS@", cmds)
		script = strings.ReplaceAll(script, "@SUBS@", subs.String())
		if shell == "zsh" {
			script = "#compdef jitform\nautoload -U +X bashcompinit && bashcompinit\n" + script
		}
		fmt.Fprint(a.stdout, script)
	case "fish":
		fmt.Fprintf(a.stdout, "# jitform completion for fish\ncomplete -c jitform -f\n")
		fmt.Fprintf(a.stdout, "complete -c jitform -n '__fish_use_subcommand' -a %q\n", cmds)
		for _, c := range []string{"grant", "ledger", "state"} {
			fmt.Fprintf(a.stdout, "complete -c jitform -n '__fish_seen_subcommand_from %s' -a %q\n", c, strings.Join(subcommands[c], " "))
		}
		fmt.Fprint(a.stdout, fishFlags)
	case "powershell":
		fmt.Fprint(a.stdout, strings.ReplaceAll(powershellCompletion, "@CMDS@", "'"+strings.Join(names, "','")+"'"))
	default:
		return a.errorf("completion: unknown shell %q: use bash, zsh, fish or powershell", shell)
	}
	return exitOK
}

const bashCompletion = `# jitform completion for bash (and zsh through bashcompinit)
_jitform() {
  local cur cmd sub i subs=""
  cur="${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      -C|--chdir) ((i++)) ;;
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd="${COMP_WORDS[i]}"; elif [ -z "$sub" ]; then sub="${COMP_WORDS[i]}"; fi ;;
    esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "@CMDS@ -C --chdir --no-color --version --help" -- "$cur"))
    return
  fi
  case "$cmd" in
@SUBS@  esac
  if [ -n "$subs" ] && [ -z "$sub" ] && [[ "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    local flags
    flags=$(jitform $cmd $sub --help 2>/dev/null | sed -n '/^Flags:/,$p' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _jitform jitform
`

const fishFlags = `function __jitform_flags
  set -l words (commandline -opc)
  jitform $words[2..3] --help 2>/dev/null | sed -n '/^Flags:/,$p' | string match -r -a -- '--[a-z][a-z0-9-]*' | sort -u
end
complete -c jitform -n 'not __fish_use_subcommand' -a '(__jitform_flags)'
`

const powershellCompletion = `# jitform completion for PowerShell
Register-ArgumentCompleter -Native -CommandName jitform -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })
  $commands = @(@CMDS@)
  if ($words.Count -le 2 -and -not $wordToComplete.StartsWith('-')) {
    $commands | Where-Object { $_ -like "$wordToComplete*" } |
      ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
    return
  }
  if ($wordToComplete.StartsWith('-')) {
    $help = & jitform $words[1] --help 2>$null
    [regex]::Matches(($help -join "` + "`" + `n"), '--[a-z][a-z0-9-]*') | ForEach-Object { $_.Value } | Sort-Object -Unique |
      Where-Object { $_ -like "$wordToComplete*" } |
      ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterName', $_) }
  }
}
`
