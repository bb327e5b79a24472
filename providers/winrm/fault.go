package winrm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// fault is a WS-Management SOAP fault (HTTP 500 and others), read by local
// names: s:Fault's subcode and reason, and the WSManFault's code and
// message.
type fault struct {
	Subcode string // e.g. w:TimedOut, w:AccessDenied
	Code    string // WSManFault Code, e.g. 2150858793, 5
	Message string
}

// parseFault returns the fault in a SOAP body, or nil.
func parseFault(body []byte) *fault {
	if !bytes.Contains(body, []byte("Fault")) {
		return nil
	}
	var env struct {
		Body struct {
			Fault *struct {
				Subcode []string `xml:"Code>Subcode>Value"`
				Reason  []string `xml:"Reason>Text"`
				Detail  struct {
					WSMan *struct {
						Code    string `xml:"Code,attr"`
						Message struct {
							Inner string `xml:",innerxml"`
						} `xml:"Message"`
					} `xml:"WSManFault"`
				} `xml:"Detail"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Fault == nil {
		return nil
	}
	f := env.Body.Fault
	out := &fault{}
	if len(f.Subcode) > 0 {
		out.Subcode = strings.TrimSpace(f.Subcode[0])
	}
	if w := f.Detail.WSMan; w != nil {
		out.Code = w.Code
		// A provider fault nests its own text: keep the text only.
		out.Message = stripTags(w.Message.Inner)
	}
	if out.Message == "" && len(f.Reason) > 0 {
		out.Message = strings.Join(strings.Fields(f.Reason[0]), " ")
	}
	return out
}

func (f *fault) String() string {
	var b strings.Builder
	b.WriteString("WinRM fault")
	if f.Subcode != "" {
		b.WriteString(" " + f.Subcode)
	}
	if f.Code != "" {
		b.WriteString(" (code " + f.Code + ")")
	}
	fmt.Fprintf(&b, ": %s", clip(f.Message))
	if h := f.hint(); h != "" {
		b.WriteString(" (" + h + ")")
	}
	return b.String()
}

// hint says what to check for the faults an operator meets when setting up.
func (f *fault) hint() string {
	m := strings.ToLower(f.Message)
	switch {
	case f.Code == "5" || strings.Contains(m, "access is denied"):
		return "the account must be an administrator on the host; a local account other than the built-in Administrator also needs LocalAccountTokenFilterPolicy = 1"
	case strings.Contains(m, "not accept any remote shell"):
		return "the host refuses remote shells: set Service/AllowRemoteShellAccess (Group Policy: Windows Remote Shell) to allow them"
	case strings.Contains(m, "maxenvelopesize") || strings.Contains(m, "envelope size"):
		return "the request exceeds the host's MaxEnvelopeSizekb"
	case strings.Contains(m, "maximum number") || strings.Contains(m, "quota"):
		return "a WinRM quota (MaxShellsPerUser, MaxConcurrentOperationsPerUser) is exhausted on the host"
	}
	return ""
}
