// Package slapdtest starts a throwaway OpenLDAP server (slapd, with the
// memberof and refint overlays) for tests: a temp dir, a random loopback
// port, plain LDAP with StartTLS and LDAPS from a Go-generated certificate,
// seeded with slapadd, stopped by t.Cleanup.
package slapdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/internal/testbed/testca"
)

// Suffix and root credentials of every test server.
const (
	BaseDN = "dc=example,dc=org"
	RootDN = "cn=admin,dc=example,dc=org"
	RootPW = "test-root-secret"
)

// Server is a running slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:PORT (StartTLS available)
	LDAPSURL string // ldaps://127.0.0.1:PORT
	CAFile   string // PEM of the CA that signed the server certificate
	Dir      string
	pid      int
}

// Base is the seed every server gets before the test's own LDIF: the suffix
// and two organisational units.
const Base = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups
`

// PolicyDN is the ppolicy overlay's default policy. Seed it with
// PolicySeed when a test needs ppolicy to act on binds (account locking);
// slapd 2.5 carries the ppolicy schema in the overlay itself.
const PolicyDN = "cn=default,ou=policies,dc=example,dc=org"

// PolicySeed is the default password policy entry (and its OU).
const PolicySeed = `dn: ou=policies,dc=example,dc=org
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,dc=example,dc=org
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
`

// SudoSchema is the sudo-ldap schema, written into every server's temp dir:
// the sudoRole object class and its attributes, OIDs 1.3.6.1.4.1.15953.9.*,
// as schema.OpenLDAP in Debian 12's sudo-ldap 1.9.13p3 defines them
// (sudoUser, sudoRunAsUser and sudoRunAsGroup are UTF-8 directory strings,
// the others IA5).
const SudoSchema = `attributetype ( 1.3.6.1.4.1.15953.9.1.1
	NAME 'sudoUser'
	DESC 'User(s) who may  run sudo'
	EQUALITY caseExactMatch
	SUBSTR caseExactSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

attributetype ( 1.3.6.1.4.1.15953.9.1.2
	NAME 'sudoHost'
	DESC 'Host(s) who may run sudo'
	EQUALITY caseExactIA5Match
	SUBSTR caseExactIA5SubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.3
	NAME 'sudoCommand'
	DESC 'Command(s) to be executed by sudo'
	EQUALITY caseExactIA5Match
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.4
	NAME 'sudoRunAs'
	DESC 'User(s) impersonated by sudo (deprecated)'
	EQUALITY caseExactIA5Match
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.5
	NAME 'sudoOption'
	DESC 'Options(s) followed by sudo'
	EQUALITY caseExactIA5Match
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )

attributetype ( 1.3.6.1.4.1.15953.9.1.6
	NAME 'sudoRunAsUser'
	DESC 'User(s) impersonated by sudo'
	EQUALITY caseExactMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

attributetype ( 1.3.6.1.4.1.15953.9.1.7
	NAME 'sudoRunAsGroup'
	DESC 'Group(s) impersonated by sudo'
	EQUALITY caseExactMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

attributetype ( 1.3.6.1.4.1.15953.9.1.8
	NAME 'sudoNotBefore'
	DESC 'Start of time interval for which the entry is valid'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 )

attributetype ( 1.3.6.1.4.1.15953.9.1.9
	NAME 'sudoNotAfter'
	DESC 'End of time interval for which the entry is valid'
	EQUALITY generalizedTimeMatch
	ORDERING generalizedTimeOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 )

attributetype ( 1.3.6.1.4.1.15953.9.1.10
	NAME 'sudoOrder'
	DESC 'an integer to order the sudoRole entries'
	EQUALITY integerMatch
	ORDERING integerOrderingMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )

objectclass ( 1.3.6.1.4.1.15953.9.2.1 NAME 'sudoRole' SUP top STRUCTURAL
	DESC 'Sudoer Entries'
	MUST ( cn )
	MAY ( sudoUser $ sudoHost $ sudoCommand $ sudoRunAs $ sudoRunAsUser $
		sudoRunAsGroup $ sudoOption $ sudoOrder $ sudoNotBefore $ sudoNotAfter $
		description )
	)
`

func find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a slapd seeded with Base plus seed (LDIF). Without slapd on
// the machine the test is skipped, or fails when JITFORM_REQUIRE_SERVERS=1.
func Start(t testing.TB, seed string) *Server {
	t.Helper()
	slapd, slapadd := find("slapd"), find("slapadd")
	if slapd == "" || slapadd == "" {
		if os.Getenv("JITFORM_REQUIRE_SERVERS") == "1" {
			t.Fatal("slapd is not installed (apt-get install -y slapd ldap-utils); JITFORM_REQUIRE_SERVERS=1")
		}
		t.Skip("slapd is not installed (apt-get install -y slapd ldap-utils)")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "db"), 0o700))
	caFile, certFile, keyFile := testca.Issue(t, "127.0.0.1", "localhost").Write(t, dir)
	must(os.WriteFile(filepath.Join(dir, "sudo.schema"), []byte(SudoSchema), 0o600))
	port, sport := freePort(t), freePort(t)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include %[1]s/sudo.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy
pidfile %[1]s/slapd.pid
TLSCertificateFile %[2]s
TLSCertificateKeyFile %[3]s
TLSCACertificateFile %[4]s
database mdb
suffix "%[5]s"
rootdn "%[6]s"
rootpw %[7]s
directory %[1]s/db
maxsize 104857600
index objectClass eq
index uid,cn eq
overlay memberof
overlay refint
refint_attributes member uniqueMember
overlay ppolicy
ppolicy_default "%[8]s"
ppolicy_use_lockout
`, dir, certFile, keyFile, caFile, BaseDN, RootDN, RootPW, PolicyDN)
	confPath := filepath.Join(dir, "slapd.conf")
	must(os.WriteFile(confPath, []byte(conf), 0o600))
	seedPath := filepath.Join(dir, "seed.ldif")
	must(os.WriteFile(seedPath, []byte(Base+"\n"+seed), 0o600))
	if out, err := exec.Command(slapadd, "-f", confPath, "-l", seedPath).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	url := fmt.Sprintf("ldap://127.0.0.1:%d/", port)
	surl := fmt.Sprintf("ldaps://127.0.0.1:%d/", sport)
	cmd := exec.Command(slapd, "-f", confPath, "-h", url+" "+surl, "-d", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(dir, "slapd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start())
	s := &Server{URL: strings.TrimSuffix(url, "/"), LDAPSURL: strings.TrimSuffix(surl, "/"), CAFile: caFile, Dir: dir, pid: cmd.Process.Pid}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := goldap.DialURL(s.URL)
		if err == nil {
			err = c.Bind(RootDN, RootPW)
			c.Close()
			if err == nil {
				return s
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (for tests of an unreachable directory).
func (s *Server) Stop() {
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if syscall.Kill(s.pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Conn returns a connection bound as the root DN.
func (s *Server) Conn(t testing.TB) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(RootDN, RootPW); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Values returns an attribute's values of one entry (nil if none).
func (s *Server) Values(t testing.TB, dn, attr string) []string {
	t.Helper()
	c := s.Conn(t)
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil {
		t.Fatalf("read %s of %s: %v", attr, dn, err)
	}
	if len(res.Entries) == 0 {
		return nil
	}
	return res.Entries[0].GetAttributeValues(attr)
}

// Dump returns every entry's DN and attributes as sorted lines, to prove
// that nothing but the intended entries changed.
func (s *Server) Dump(t testing.TB) []string {
	t.Helper()
	c := s.Conn(t)
	res, err := c.SearchWithPaging(goldap.NewSearchRequest(BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"*"}, nil), 500)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			for _, v := range a.Values {
				lines = append(lines, e.DN+"|"+a.Name+"="+v)
			}
		}
	}
	return lines
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PID is the server's process id.
func (s *Server) PID() string { return strconv.Itoa(s.pid) }

// Pause freezes the server (SIGSTOP): the kernel still accepts connections
// but nothing answers, like a hung directory, until Resume. A cleanup
// resumes it so the server can be stopped.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pause slapd: %v", err)
	}
	t.Cleanup(s.Resume)
	// SIGSTOP takes effect when the kernel next schedules the process: on a
	// busy machine slapd could still answer a request sent right after
	// kill returns. Wait until every thread is stopped.
	deadline := time.Now().Add(5 * time.Second)
	for !s.stopped() {
		if time.Now().After(deadline) {
			t.Fatalf("pause slapd: pid %d did not stop within 5s", s.pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// stopped reports whether every thread of slapd is in the stopped state.
func (s *Server) stopped() bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", s.pid, task.Name()))
		if err != nil {
			return false
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume lets a paused server answer again.
func (s *Server) Resume() { _ = syscall.Kill(s.pid, syscall.SIGCONT) }
