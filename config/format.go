package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical HCL layout (hclwrite). Source that does
// not parse is an error naming line and column; nothing is rewritten then.
func Format(src []byte) ([]byte, error) {
	return FormatFile("", src)
}

// FormatFile is Format with a file name for the error message.
func FormatFile(filename string, src []byte) ([]byte, error) {
	_, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			pos := ""
			if d.Subject != nil {
				pos = fmt.Sprintf("line %d, column %d: ", d.Subject.Start.Line, d.Subject.Start.Column)
				if filename != "" {
					pos = fmt.Sprintf("%s:%d:%d: ", filename, d.Subject.Start.Line, d.Subject.Start.Column)
				}
			}
			return nil, fmt.Errorf("%s%s; %s", pos, d.Summary, d.Detail)
		}
	}
	return hclwrite.Format(src), nil
}
