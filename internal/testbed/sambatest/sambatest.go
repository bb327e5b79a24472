// Package sambatest runs a throwaway Samba Active Directory domain
// controller for tests: realm EXAMPLE.TEST on 127.0.0.2, LDAPS and StartTLS
// with a Go-generated certificate, seeded with users and groups.
//
// Provisioning takes seconds, so it happens once per machine: the first
// Start provisions and seeds a template under os.TempDir and every Start
// copies it (about half a second). Samba's ports are fixed (389, 636), so
// only one DC can listen on 127.0.0.2 at a time: Start serialises its users
// with a mutex inside the process and a flock across processes, held until
// the test's cleanup stops the DC.
package sambatest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/sync/errgroup"
)

// The domain every DC serves.
const (
	Addr          = "127.0.0.2"
	BaseDN        = "DC=example,DC=test"
	PeopleDN      = "OU=People,DC=example,DC=test"
	GroupsDN      = "OU=Groups,DC=example,DC=test"
	AdminDN       = "CN=Administrator,CN=Users,DC=example,DC=test"
	AdminUPN      = "Administrator@example.test"
	AdminPassword = "Adm1n-Secret-Pa55!"

	// Tier1 contains Tier2, which contains carol: nested membership.
	Tier1DN = "CN=Tier1 Admins,OU=Groups,DC=example,DC=test"
	Tier2DN = "CN=Tier2 Admins,OU=Groups,DC=example,DC=test"
	// AdminsDN holds alice.
	AdminsDN = "CN=Admins,OU=Groups,DC=example,DC=test"
	// EmptyDN has no members.
	EmptyDN = "CN=Empty,OU=Groups,DC=example,DC=test"
	// BigDN holds BigSize users bulk0000..bulkNNNN, more than Windows'
	// MaxValRange of 1,500, for ranged retrieval.
	BigDN   = "CN=Big,OU=Groups,DC=example,DC=test"
	BigSize = 1600
)

// templateVersion names the template directory; bump it when the seed or
// provisioning changes so stale templates are not reused.
const templateVersion = "v1"

// UserDN is the DN of a seeded user (alice, bob, carol, bulk0042, ...).
func UserDN(name string) string { return "CN=" + name + "," + PeopleDN }

// BulkName is the name of the i-th member of the big group.
func BulkName(i int) string { return fmt.Sprintf("bulk%04d", i) }

// DC is a running domain controller.
type DC struct {
	LDAPSURL string // ldaps://127.0.0.2
	URL      string // ldap://127.0.0.2 (StartTLS available; simple bind needs it)
	CAFile   string // PEM of the CA that signed the DC's certificate
	Dir      string
}

// inProcess serialises DCs within one test binary; the flock does it across
// binaries. A package-level mutex is the one piece of shared state here: the
// address it guards is machine-wide.
var inProcess sync.Mutex

func find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("JITFORM_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s; JITFORM_REQUIRE_SERVERS=1", why)
	}
	t.Skip(why)
}

// Start starts a seeded DC on 127.0.0.2 and stops it when the test ends.
// Without samba, or when not root, the test is skipped (or fails when
// JITFORM_REQUIRE_SERVERS=1).
func Start(t testing.TB) *DC {
	t.Helper()
	samba, tool := find("samba"), find("samba-tool")
	if samba == "" || tool == "" {
		skipOrFail(t, "samba is not installed (apt-get install -y samba samba-ad-dc samba-ad-provision python3-samba winbind ldb-tools smbclient)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "a Samba AD DC needs root (ports 389 and 636 on 127.0.0.2)")
	}

	inProcess.Lock()
	lock, err := flock(filepath.Join(os.TempDir(), "jitform-sambatest.lock"))
	if err != nil {
		inProcess.Unlock()
		t.Fatalf("lock 127.0.0.2 for Samba: %v", err)
	}
	release := func() { lock.Close(); inProcess.Unlock() }

	// The template is named by our seed's version and Samba's, so an
	// upgraded Samba never starts from another version's database.
	ver, _ := exec.Command(samba, "-V").Output()
	tmpl := filepath.Join(os.TempDir(), "jitform-sambatest-"+templateVersion+"-"+sanitize(string(ver)))
	if _, err := os.Stat(filepath.Join(tmpl, "ready")); err != nil {
		if err := provision(t, samba, tool, tmpl); err != nil {
			release()
			t.Fatalf("provision a Samba AD template in %s: %v", tmpl, err)
		}
	}
	dir := t.TempDir()
	dc, stop, err := run(samba, tmpl, filepath.Join(dir, "dc"))
	if err != nil {
		release()
		t.Fatalf("start Samba AD DC: %v", err)
	}
	t.Cleanup(func() { stop(); release() })
	return dc
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' {
			return r
		}
		return '_'
	}, strings.TrimSpace(s))
}

func flock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil // closing the file releases the lock
}

// provision makes the template: a provisioned, seeded DC directory, the
// marker file "ready" written last. It runs under the flock.
func provision(t testing.TB, samba, tool, tmpl string) error {
	t.Helper()
	if err := os.RemoveAll(tmpl); err != nil {
		return err
	}
	work := tmpl + ".work"
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(tool, "domain", "provision",
		"--realm=EXAMPLE.TEST", "--domain=EXAMPLE", "--server-role=dc", "--dns-backend=NONE",
		"--host-name=dc1", "--adminpass="+AdminPassword, "--targetdir="+work,
		"--option=interfaces="+Addr+"/8", "--option=bind interfaces only=yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("samba-tool domain provision: %v\n%s", err, out)
	}
	t.Logf("sambatest: provisioned template in %v", time.Since(start).Round(time.Millisecond))

	// Seed it once, on a running copy, so every later DC starts seeded.
	seeded := work + ".seed"
	_ = os.RemoveAll(seeded)
	dc, stop, err := run(samba, work, seeded)
	if err != nil {
		return err
	}
	start = time.Now()
	err = seed(dc)
	stop()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	t.Logf("sambatest: seeded template in %v", time.Since(start).Round(time.Millisecond))
	// The template keeps the provisioned smb.conf, pointing at tmpl: run
	// rewrites those paths and adds its own settings for each copy.
	orig, err := os.ReadFile(filepath.Join(work, "etc", "smb.conf"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(seeded, "etc", "smb.conf"), []byte(strings.ReplaceAll(string(orig), work, tmpl)), 0o600); err != nil {
		return err
	}
	_ = os.RemoveAll(work)
	// Drop files that belong to one run, then publish.
	for _, f := range []string{"tls", "log", "run", "ca.pem"} {
		_ = os.RemoveAll(filepath.Join(seeded, f))
	}
	if err := os.Rename(seeded, tmpl); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tmpl, "ready"), []byte(templateVersion+"\n"), 0o600)
}

// run copies the template from src to dir, rewrites smb.conf and starts
// samba. stop ends it and waits.
func run(samba, src, dir string) (*DC, func(), error) {
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("copy template: %v: %s", err, out)
	}
	_ = os.Remove(filepath.Join(dir, "ready"))
	for _, d := range []string{"tls", "log", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, nil, err
		}
	}
	caFile, certFile, keyFile, err := writeCerts(filepath.Join(dir, "tls"))
	if err != nil {
		return nil, nil, fmt.Errorf("certificates: %w", err)
	}
	confPath := filepath.Join(dir, "etc", "smb.conf")
	b, err := os.ReadFile(confPath)
	if err != nil {
		return nil, nil, err
	}
	conf := strings.ReplaceAll(string(b), src, dir)
	// Our own certificate, never Samba's self-generated one (its serial is
	// negative about half the time and Go refuses to parse it); and every
	// runtime path inside dir so nothing touches /run/samba or /var/log.
	extra := fmt.Sprintf("\ttls enabled = yes\n\ttls keyfile = %s\n\ttls certfile = %s\n\ttls cafile = %s\n"+
		"\tpid directory = %[4]s/run\n\tlog file = %[4]s/log/log.%%m\n\tncalrpc dir = %[4]s/run/ncalrpc\n"+
		"\twinbindd socket directory = %[4]s/run/winbindd\n\tntp signd socket directory = %[4]s/run/ntp_signd\n",
		keyFile, certFile, caFile, dir)
	conf = strings.Replace(conf, "[global]\n", "[global]\n"+extra, 1)
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, nil, err
	}

	logf, err := os.Create(filepath.Join(dir, "log", "samba.out"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(samba, "-F", "--debug-stdout", "-M", "single", "-s", confPath, "--option=server services=ldap")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	}
	dc := &DC{LDAPSURL: "ldaps://" + Addr, URL: "ldap://" + Addr, CAFile: caFile, Dir: dir}

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := dc.dial()
		if err == nil {
			c.Close()
			return dc, stop, nil
		}
		select {
		case <-done:
			logf.Close()
			log, _ := os.ReadFile(filepath.Join(dir, "log", "samba.out"))
			return nil, nil, fmt.Errorf("samba exited: %s", tail(log))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "log", "samba.out"))
			return nil, nil, fmt.Errorf("no LDAPS bind on %s within 30 s: %v\n%s", dc.LDAPSURL, err, tail(log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// TLSConfig trusts only the DC's CA.
func (d *DC) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(d.CAFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &tls.Config{RootCAs: pool, ServerName: Addr, MinVersion: tls.VersionTLS12}
}

func (d *DC) dial() (*goldap.Conn, error) {
	c, err := goldap.DialURL(d.LDAPSURL, goldap.DialWithTLSConfig(d.TLSConfig()),
		goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(30 * time.Second)
	if err := c.Bind(AdminUPN, AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Conn returns an LDAPS connection bound as Administrator.
func (d *DC) Conn(t testing.TB) *goldap.Conn {
	t.Helper()
	c, err := d.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Values returns an attribute's values of one entry (nil if none). Samba
// returns every value of a plain attribute request (no MaxValRange).
func (d *DC) Values(t testing.TB, entryDN, attr string) []string {
	t.Helper()
	c := d.Conn(t)
	res, err := c.Search(goldap.NewSearchRequest(entryDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil {
		t.Fatalf("read %s of %s: %v", attr, entryDN, err)
	}
	if len(res.Entries) == 0 {
		return nil
	}
	return res.Entries[0].GetAttributeValues(attr)
}

// Modify applies one change as Administrator (for test setup).
func (d *DC) Modify(t testing.TB, entryDN string, add, del []string) {
	t.Helper()
	req := goldap.NewModifyRequest(entryDN, nil)
	if len(add) > 0 {
		req.Add("member", add)
	}
	if len(del) > 0 {
		req.Delete("member", del)
	}
	if err := d.Conn(t).Modify(req); err != nil {
		t.Fatalf("modify %s: %v", entryDN, err)
	}
}

// seed adds the OUs, users and groups with LDAP Add operations.
func seed(d *DC) error {
	c, err := d.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	add := func(c *goldap.Conn, entryDN string, attrs map[string][]string) error {
		req := goldap.NewAddRequest(entryDN, nil)
		for k, v := range attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("add %s: %w", entryDN, err)
		}
		return nil
	}
	user := func(c *goldap.Conn, name string) error {
		return add(c, UserDN(name), map[string][]string{
			"objectClass":       {"user"},
			"sAMAccountName":    {name},
			"userPrincipalName": {name + "@example.test"},
			"displayName":       {name},
		})
	}
	group := func(entryDN, name string) error {
		return add(c, entryDN, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {name}})
	}
	for _, ou := range []string{PeopleDN, GroupsDN} {
		if err := add(c, ou, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
			return err
		}
	}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if err := user(c, u); err != nil {
			return err
		}
	}
	// A second entry whose userPrincipalName differs but whose display
	// name is "twin", and two users sharing a UPN prefix: ambiguity is
	// tested with a user_filter that matches both.
	for _, u := range []string{"twin1", "twin2"} {
		if err := add(c, UserDN(u), map[string][]string{
			"objectClass": {"user"}, "sAMAccountName": {u}, "userPrincipalName": {u + "@example.test"}, "displayName": {"twin"},
		}); err != nil {
			return err
		}
	}
	for _, g := range [][2]string{{AdminsDN, "Admins"}, {Tier1DN, "Tier1Admins"}, {Tier2DN, "Tier2Admins"}, {EmptyDN, "Empty"}, {BigDN, "Big"}} {
		if err := group(g[0], g[1]); err != nil {
			return err
		}
	}
	mod := func(g string, members ...string) error {
		req := goldap.NewModifyRequest(g, nil)
		req.Add("member", members)
		if err := c.Modify(req); err != nil {
			return fmt.Errorf("add members to %s: %w", g, err)
		}
		return nil
	}
	if err := mod(AdminsDN, UserDN("alice")); err != nil {
		return err
	}
	if err := mod(Tier2DN, UserDN("carol")); err != nil {
		return err
	}
	if err := mod(Tier1DN, Tier2DN); err != nil {
		return err
	}

	// The big group's users, four connections at a time.
	g, _ := errgroup.WithContext(context.Background())
	const workers = 4
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			c, err := d.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			for i := w; i < BigSize; i += workers {
				if err := user(c, BulkName(i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Members in a few Modify calls of 400.
	for lo := 0; lo < BigSize; lo += 400 {
		var ms []string
		for i := lo; i < lo+400 && i < BigSize; i++ {
			ms = append(ms, UserDN(BulkName(i)))
		}
		if err := mod(BigDN, ms...); err != nil {
			return err
		}
	}
	if n := len(d.valuesNoT(c, BigDN, "member")); n != BigSize {
		return fmt.Errorf("big group has %d members after seeding, want %d", n, BigSize)
	}
	return nil
}

func (d *DC) valuesNoT(c *goldap.Conn, entryDN, attr string) []string {
	res, err := c.Search(goldap.NewSearchRequest(entryDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) == 0 {
		return nil
	}
	return res.Entries[0].GetAttributeValues(attr)
}

// writeCerts makes a CA and a server certificate for 127.0.0.2 with
// positive serials, RSA keys in PEM as Samba's GnuTLS expects.
func writeCerts(dir string) (caFile, certFile, keyFile string, err error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jitform sambatest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1.example.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(Addr)}, DNSNames: []string{"dc1.example.test", "dc1"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	write := func(name, typ string, b []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600)
	}
	var errs []error
	caFile, e1 := write("ca.pem", "CERTIFICATE", caDER)
	certFile, e2 := write("cert.pem", "CERTIFICATE", der)
	keyFile, e3 := write("key.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	errs = append(errs, e1, e2, e3)
	return caFile, certFile, keyFile, errors.Join(errs...)
}
