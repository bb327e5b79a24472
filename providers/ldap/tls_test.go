package ldap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// negativeSerialServer is an LDAPS listener whose certificate has a
// negative serial number, as Samba's self-made certificate has about half
// the time. Go refuses to parse it, whatever the verification settings.
func negativeSerialServer(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A positive serial whose bytes are easy to find, turned negative in
	// the DER afterwards (Go will not create a negative one).
	serial := new(big.Int).SetBytes([]byte{0x7e, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07})
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	enc := []byte{0x02, 0x08, 0x7e, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07}
	if bytes.Count(der, enc) != 1 {
		t.Fatal("serial not found in the certificate")
	}
	der = bytes.Replace(der, enc, append([]byte{0x02, 0x08, 0xfe}, enc[3:]...), 1)
	if _, err := x509.ParseCertificate(der); err == nil || !strings.Contains(err.Error(), "negative serial") {
		t.Fatalf("the patched certificate parses: %v", err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return "ldaps://" + l.Addr().String()
}

// The Samba certificate trap: the error names the target and the step, says
// what is wrong and what to do, even with verification off, and never
// carries the password.
func TestNegativeSerialCertificate(t *testing.T) {
	t.Parallel()
	url := negativeSerialServer(t)
	const pw = "Never-Shown-4711!"
	for _, skip := range []bool{false, true} {
		tg := &config.Target{Kind: "ldap", Name: "ad", Addr: "target.ldap.ad", LDAP: &config.LDAPTarget{
			URL: url, BindDN: "svc@example.test", Password: config.NewSecret(pw), BaseDN: "DC=example,DC=test",
			Flavor: config.FlavorActiveDirectory, InsecureSkipVerify: skip, Timeout: 5 * time.Second,
		}}
		p, err := Open(context.Background(), tg, providers.Options{})
		if err == nil {
			p.Close()
			t.Fatalf("insecure_skip_verify=%v: Open succeeded", skip)
		}
		msg := err.Error()
		t.Logf("insecure_skip_verify=%v: %s", skip, msg)
		for _, want := range []string{"target.ldap.ad", url, "negative serial number", "tls certfile"} {
			if !strings.Contains(msg, want) {
				t.Errorf("insecure_skip_verify=%v: error %q lacks %q", skip, msg, want)
			}
		}
		if strings.Contains(msg, pw) {
			t.Errorf("error leaks the password: %q", msg)
		}
	}
}

// A hung directory: dial, StartTLS and every operation give up within the
// timeout or the context, naming the target, and a Modify whose answer
// never came is reported as unknown, not failed.
func TestTimeouts(t *testing.T) {
	s := slapdtest.Start(t, seed)
	ctx := context.Background()
	short := func(c *config.LDAPTarget) { c.Timeout = 300 * time.Millisecond }

	// A hung server while connecting: StartTLS and LDAPS handshakes.
	s.Pause(t)
	for _, tc := range []struct {
		name string
		mod  func(*config.LDAPTarget)
	}{
		{"starttls", short},
		{"ldaps", func(c *config.LDAPTarget) { short(c); c.URL = s.LDAPSURL; c.StartTLS = nil }},
	} {
		start := time.Now()
		p, err := Open(ctx, ldapTarget(s, tc.mod), providers.Options{})
		if err == nil {
			p.Close()
			t.Fatalf("%s: Open against a hung server succeeded", tc.name)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: Open took %v with a 300ms timeout", tc.name, d)
		}
		if !strings.Contains(err.Error(), "target.ldap.corp") {
			t.Errorf("%s: error %q does not name the target", tc.name, err)
		}
	}
	s.Resume()

	// Hung after connecting: timeout bounds each operation, and so does
	// the context.
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	quick := open(t, ldapTarget(s, short))
	s.Pause(t)
	start := time.Now()
	if _, err := quick.Read(ctx, []*config.Group{group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")}); err == nil || !strings.Contains(err.Error(), "target.ldap.corp") {
		t.Errorf("Read against a hung server with timeout 300ms = %v, want an error naming the target", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Read took %v with a 300ms timeout", d)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start = time.Now()
	_, err := p.Resolve(cctx, []string{"alice"})
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resolve against a hung server = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Resolve took %v with a 200ms deadline", d)
	}
	s.Resume()

	// Hung between the read and the Modify: the write's fate is unknown.
	admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	p.beforeModify = func() { s.Pause(t) }
	cctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	outs, err := p.Apply(cctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}}})
	cancel()
	p.beforeModify = nil
	s.Resume()
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Unknown || outs[0].Err == nil {
		t.Errorf("Modify without an answer = %s %v, want unknown", outs[0].Status, outs[0].Err)
	}
}
