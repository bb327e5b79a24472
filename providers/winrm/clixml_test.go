package winrm

import (
	"strings"
	"testing"
)

func TestDecodeCLIXML(t *testing.T) {
	progress := strings.Repeat(`<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN><MS><PR N="Record"><AV>Preparing modules for first use.</AV></PR></MS></Obj>`, 3)
	for _, tc := range []struct{ name, in, want string }{
		{"error records behind progress records",
			"#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">" + progress +
				`<S S="Error">Cannot create type. Only core types are supported in this language mode._x000D__x000A_</S><S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">+ $x = New-Object Foo_x000D__x000A_</S><S S="Error">+ ~~~~~~~~~~~~~~~~~~_x000D__x000A_</S><S S="Error">    + CategoryInfo          : PermissionDenied: (:) [], RuntimeException_x000D__x000A_</S></Objs>`,
			"Cannot create type. Only core types are supported in this language mode."},
		{"escaped characters", "#< CLIXML\n<Objs><S S=\"Error\">a &lt;b&gt; _x005F_x_x0009_y</S></Objs>", "a <b> _x\ty"},
		{"plain text", "  boom \r\n", "boom"},
		{"progress only", "#< CLIXML\n<Objs>" + progress + "</Objs>", "(PowerShell wrote no error record)"},
		{"text before the document", "banner\r\n#< CLIXML\n<Objs><S S=\"Error\">bad</S></Objs>", "banner bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecodeCLIXML(tc.in); got != tc.want {
				t.Errorf("DecodeCLIXML = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzDecodeCLIXML(f *testing.F) {
	for _, s := range []string{"#< CLIXML\n<Objs><S S=\"Error\">x_x000D__x000A_</S></Objs>", "#< CLIXML\n<Objs><S S=\"Error\">", "#< CLIXML", "_x00", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := DecodeCLIXML(s)
		// A document is never echoed: only its error records' text.
		if strings.HasPrefix(s, "#< CLIXML") && strings.Contains(out, "<Objs") && !strings.Contains(s, "_x") && !strings.Contains(s, "&lt;") {
			if !strings.Contains(s, "<![CDATA[") {
				t.Errorf("markup left in %q", out)
			}
		}
	})
}
