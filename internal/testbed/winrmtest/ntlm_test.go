package winrmtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Azure/go-ntlmssp"
)

// Windows binds an NTLM login to its TCP connection: the challenge issued
// on one connection cannot be answered on another, and the same answer on
// the connection that got the challenge logs in.
func TestNTLMLoginIsBoundToItsConnection(t *testing.T) {
	s := New(t, `CORP\svc-jitform`, "winrm-Secret-4471", "web01."+Domain)
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn := func() *http.Transport {
		return &http.Transport{Dial: s.Dial, TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 1}
	}
	url := "https://web01." + Domain + ":5986/wsman"
	post := func(tr *http.Transport, authz string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("<x/>"))
		req.Header.Set("Authorization", authz)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drained, the connection is reused
		resp.Body.Close()
		return resp
	}
	a, b := conn(), conn()
	defer a.CloseIdleConnections()
	defer b.CloseIdleConnections()
	neg, _ := ntlmssp.NewNegotiateMessage("", "")
	resp := post(a, "NTLM "+base64.StdEncoding.EncodeToString(neg))
	tok, _ := strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "NTLM ")
	challenge, err := base64.StdEncoding.DecodeString(tok)
	if resp.StatusCode != http.StatusUnauthorized || err != nil || len(challenge) == 0 {
		t.Fatalf("negotiate: %d %q", resp.StatusCode, tok)
	}
	auth, err := ntlmssp.NewAuthenticateMessage(challenge, s.User, s.Pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr := "NTLM " + base64.StdEncoding.EncodeToString(auth)
	if got := post(b, hdr).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("authenticate on another connection: HTTP %d, want 401", got)
	}
	if s.NTLMLogins() != 0 {
		t.Error("a login on another connection counted")
	}
	// The challenge was spent by the attempt on b only if b had it: a's
	// challenge still answers on a.
	if got := post(a, hdr).StatusCode; got == http.StatusUnauthorized {
		t.Errorf("authenticate on the connection of the challenge: HTTP %d", got)
	}
	if got := post(a, "").StatusCode; got == http.StatusUnauthorized {
		t.Error("a connection an NTLM login authenticated must stay authenticated")
	}
	if got := post(b, "").StatusCode; got != http.StatusUnauthorized {
		t.Errorf("an unauthenticated connection without credentials: HTTP %d, want 401", got)
	}
}
