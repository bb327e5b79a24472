package winrm

import (
	"strings"
	"testing"
)

const timedOutFault = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="web01"><f:Message>The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

func TestParseFault(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"operation timeout keeps the word masterzen retries on", timedOutFault, "WinRM fault w:TimedOut (code 2150858793): The WS-Management service cannot complete the operation within the time specified in OperationTimeout."},
		{"provider fault: text only", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text>x</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5"><f:Message><f:ProviderFault provider="Shell" path="%windir%">Access is denied. </f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`,
			"WinRM fault (code 5): Access is denied. (the account must be an administrator"},
		{"reason only", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason><s:Text>The Windows Remote Shell cannot process the request. The server is already executing the maximum number of concurrent shells a user can remotely open on the same system.</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`,
			"(a WinRM quota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := parseFault([]byte(tc.body))
			if f == nil || !strings.Contains(f.String(), tc.want) {
				t.Errorf("fault = %v, want it to contain %q", f, tc.want)
			}
		})
	}
	if parseFault([]byte("<html>Bad Request</html>")) != nil {
		t.Error("a body without a fault parsed as one")
	}
}

func FuzzParseFault(f *testing.F) {
	f.Add([]byte(timedOutFault))
	f.Add([]byte("<s:Envelope><s:Body><s:Fault>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fl := parseFault(b); fl != nil && strings.Contains(fl.String(), "<f:") {
			t.Errorf("markup in %q", fl.String())
		}
	})
}
