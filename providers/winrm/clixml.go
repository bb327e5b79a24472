package winrm

import (
	"encoding/xml"
	"regexp"
	"strconv"
	"strings"
)

// DecodeCLIXML returns the error text of what powershell.exe writes to a
// redirected stderr: a "#< CLIXML" document whose <S S="Error"> records
// hold the error lines (control characters escaped as _xHHHH_), mixed with
// progress records ("Preparing modules for first use.") that say nothing.
// Text that is not CLIXML is returned trimmed.
func DecodeCLIXML(s string) string {
	i := strings.Index(s, "#< CLIXML")
	if i < 0 {
		return strings.TrimSpace(s)
	}
	before := strings.TrimSpace(s[:i])
	dec := xml.NewDecoder(strings.NewReader(s[i+len("#< CLIXML"):]))
	var lines []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "S" || attr(se, "S") != "Error" {
			continue
		}
		var text string
		if err := dec.DecodeElement(&text, &se); err != nil {
			break
		}
		lines = append(lines, unescapeCLIXML(text))
	}
	msg := strings.TrimSpace(strings.Join(lines, ""))
	// Keep the error, not PowerShell's pointer at the bootstrap's text.
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimRight(l, "\r ")
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "At line:") || strings.HasPrefix(t, "+ ") || strings.HasPrefix(t, "+~") || strings.Trim(t, "+~ ") == "" {
			continue
		}
		keep = append(keep, strings.TrimSpace(l))
	}
	out := strings.Join(keep, " ")
	if before != "" {
		out = strings.TrimSpace(before + " " + out)
	}
	if out == "" {
		return "(PowerShell wrote no error record)"
	}
	return out
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

var clixmlEscape = regexp.MustCompile(`_x([0-9A-Fa-f]{4})_`)

func unescapeCLIXML(s string) string {
	return clixmlEscape.ReplaceAllStringFunc(s, func(m string) string {
		n, err := strconv.ParseUint(m[2:6], 16, 16)
		if err != nil {
			return m
		}
		return string(rune(n))
	})
}
