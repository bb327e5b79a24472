// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb once
// per machine into a template (reused by later test processes), then per
// cluster a copy of it in a temp dir, served on a random loopback port with
// TLS (a testca certificate) and on a unix socket in that dir, stopped with
// pg_ctl in t.Cleanup. Without PostgreSQL on the machine the test is
// skipped, or fails when JITFORM_REQUIRE_SERVERS=1.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitform/jitform/internal/testbed/testca"
)

// Superuser credentials of every test cluster. TCP connections need the
// password (scram-sha-256); the unix socket trusts local users.
const (
	SuperUser     = "postgres"
	SuperPassword = "pgtest-super-secret"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	Host   string // 127.0.0.1
	Port   int
	Dir    string // socket directory; the data directory is Dir/data
	CAFile string // PEM of the CA that signed the server certificate (for localhost and 127.0.0.1)
	bin    string
	asUser *user.User // set when the tests run as root: the server runs as postgres
	logf   string
}

// binDir finds initdb and pg_ctl: on PATH, else the newest
// /usr/lib/postgresql/*/bin.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(real)
			}
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// Available reports whether PostgreSQL server binaries are installed.
func Available() bool { return binDir() != "" }

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("JITFORM_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg + "; JITFORM_REQUIRE_SERVERS=1")
	}
	t.Skip(msg)
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// serverUser is the account the server runs as: postgres when the tests
// run as root (initdb and postgres refuse root), else the current user.
func serverUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs the system user postgres: %w", err)
	}
	return u, nil
}

// command runs a server binary as the server's user.
func command(u *user.User, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if u != nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
	}
	cmd.Dir = "/"
	return cmd
}

func chown(u *user.User, paths ...string) error {
	if u == nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// template returns a data directory made by initdb, shared by every test
// process of this user and PostgreSQL version: created once (into a temp
// dir, then renamed into place) and copied for each cluster.
func template(bin string, u *user.User) (string, error) {
	templateOnce.Do(func() {
		out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
		if err != nil {
			templateErr = fmt.Errorf("postgres --version: %w", err)
			return
		}
		// "postgres (PostgreSQL) 15.18 (Debian ...)": the version is the third field.
		ver := "unknown"
		if f := strings.Fields(string(out)); len(f) >= 3 {
			ver = f[2]
		}
		final := filepath.Join(os.TempDir(), fmt.Sprintf("jitform-pgtest-template-%d-%s", os.Geteuid(), ver))
		if _, err := os.Stat(filepath.Join(final, "data", "PG_VERSION")); err == nil {
			templateDir = final
			return
		}
		tmp, err := os.MkdirTemp("", "jitform-pgtest-template-")
		if err != nil {
			templateErr = err
			return
		}
		defer os.RemoveAll(tmp)
		if err := os.Chmod(tmp, 0o755); err != nil {
			templateErr = err
			return
		}
		pw := filepath.Join(tmp, "pw")
		if err := os.WriteFile(pw, []byte(SuperPassword+"\n"), 0o644); err != nil {
			templateErr = err
			return
		}
		if err := chown(u, tmp, pw); err != nil {
			templateErr = err
			return
		}
		cmd := command(u, filepath.Join(bin, "initdb"), "-D", filepath.Join(tmp, "data"), "-U", SuperUser,
			"--pwfile="+pw, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
		if out, err := cmd.CombinedOutput(); err != nil {
			templateErr = fmt.Errorf("initdb: %v\n%s", err, out)
			return
		}
		os.Remove(pw)
		if err := os.Rename(tmp, final); err != nil {
			// Another test process made it first: use theirs.
			if _, serr := os.Stat(filepath.Join(final, "data", "PG_VERSION")); serr != nil {
				templateErr = fmt.Errorf("install the cluster template: %w", err)
				return
			}
		}
		templateDir = final
	})
	return templateDir, templateErr
}

// Start starts a fresh cluster (a copy of the template) and stops it when
// the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := binDir()
	if bin == "" {
		skipOrFail(t, "PostgreSQL is not installed (apt-get install -y postgresql)")
	}
	u, err := serverUser()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	tpl, err := template(bin, u)
	if err != nil {
		t.Fatalf("make the PostgreSQL template cluster: %v", err)
	}
	// Not t.TempDir: its parents are 0700 root, which postgres cannot traverse.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(tpl, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("copy the template cluster: %v\n%s", err, out)
	}
	caFile, certFile, keyFile := testca.Issue(t, "127.0.0.1", "localhost").Write(t, dir)
	if err := os.Chmod(caFile, 0o644); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, "postgres.log")
	if err := chown(u, dir, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Host: "127.0.0.1", Dir: dir, CAFile: caFile, bin: bin, asUser: u, logf: logf}
	c.Port = freePort(t)
	c.start(t, certFile, keyFile)
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *Cluster) start(t testing.TB, certFile, keyFile string) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s -c fsync=off -c max_connections=100",
		c.Port, c.Dir, certFile, keyFile)
	cmd := command(c.asUser, filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-o", opts, "-l", c.logf, "-w", "-t", "30", "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(c.logf)
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL(SuperUser, SuperPassword, "postgres"))
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("PostgreSQL did not answer within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) stop() {
	cmd := command(c.asUser, filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")
	_ = cmd.Run()
}

// Restart stops the server abruptly (immediate mode: every session is cut,
// as in a crash) and starts it again on the same port.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.stop()
	c.start(t, filepath.Join(c.Dir, "cert.pem"), filepath.Join(c.Dir, "key.pem"))
}

// Stop stops the server (for tests of an unreachable database).
func (c *Cluster) Stop() { c.stop() }

// URL is a connection URL over TCP for user and password to database db,
// with TLS verified against the cluster's CA (sslmode=verify-full).
func (c *Cluster) URL(usr, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword(usr, password)
	} else {
		u.User = url.User(usr)
	}
	u.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {c.CAFile}}.Encode()
	return u.String()
}

// SocketURL is a connection URL over the unix socket (trusted: no password).
func (c *Cluster) SocketURL(usr, db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d", url.PathEscape(usr), url.PathEscape(db), url.QueryEscape(c.Dir), c.Port)
}

// SuperURL is the superuser's TCP URL to database db.
func (c *Cluster) SuperURL(db string) string { return c.URL(SuperUser, SuperPassword, db) }

// Exec runs SQL as the superuser in database db.
func (c *Cluster) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.SocketURL(SuperUser, db))
	if err != nil {
		t.Fatalf("connect to %s as superuser: %v", db, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

var dbSeq struct {
	sync.Mutex
	n int
}

// NewDatabase creates an empty database and returns its name: tests that
// share a cluster stay apart.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("jitform_test_%d", dbSeq.n)
	dbSeq.Unlock()
	c.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return name
}

// Log returns the server log (for failure messages).
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logf)
	return string(b)
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
