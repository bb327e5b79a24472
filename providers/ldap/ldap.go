// Package ldap is the "ldap" target: an OpenLDAP or Active Directory server
// reached with github.com/go-ldap/ldap/v3.
//
// Identities: a member's ID is its canonical DN (internal/dn), whatever the
// group's shape. A posixGroup's memberUid values are mapped to the DN of the
// one entry with that uid, so both shapes compare by DN (as the ldif target
// does); a uid that matches no entry keeps the uid as its ID, so an
// exclusive group still removes it.
//
// Round trips are what users wait for: principals are resolved with one
// OR-filter search per chunk, groups are read with one OR-filter search per
// chunk of groups, and each changed group costs one read (to refuse
// emptying a groupOfNames) and one Modify.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/sync/errgroup"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/providers"
)

// chunk is how many values go into one OR filter: large enough that 1,000
// groups cost ten searches, small enough for any server's filter limits.
const chunk = 100

// target is one open connection to a directory. go-ldap multiplexes
// concurrent operations over one connection; sem bounds how many.
type target struct {
	addr   string
	cfg    *config.LDAPTarget
	conn   *goldap.Conn
	sem    chan struct{}
	ops    atomic.Int64 // round trips, for benchmarks and tests
	step   int          // ranged retrieval window (0: let the server decide)
	report func(string, ...any)
	log    *slog.Logger // JITFORM_LOG: one record per operation
	// beforeModify, set only by tests, runs between a group's read and its
	// Modify so a test can change the group there (a concurrent writer).
	beforeModify func()
	// now, set only by tests, is the clock TTLs are computed by.
	now func() time.Time

	mu  sync.Mutex
	uid map[string]string // canonical DN -> uid, learned while resolving and reading
}

// Counter is implemented by the target Open returns: the number of LDAP
// operations (round trips) it has made.
type Counter interface{ Ops() int64 }

// Open dials, secures and binds. Every error names the target and the step;
// none ever contains the password.
func Open(ctx context.Context, t *config.Target, opts providers.Options) (providers.Target, error) {
	c := t.LDAP
	if c == nil {
		return nil, fmt.Errorf("%s: not an ldap target", t.Addr)
	}
	// The password's env() is read now, when the target opens.
	password, err := c.Password.Value()
	if err != nil {
		return nil, fmt.Errorf("%s: password: %w", t.Addr, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = config.DefaultLDAPTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: parse url: %w", t.Addr, err)
	}
	tc, err := tlsConfig(c, u.Hostname(), opts.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Addr, err)
	}
	dialer := &net.Dialer{Timeout: timeout}
	conn, err := goldap.DialURL(c.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, fmt.Errorf("%s: connect to %s: %w%s", t.Addr, c.URL, err, tlsAdvice(err))
	}
	conn.SetTimeout(timeout)
	var ops int64
	if u.Scheme == "ldap" && c.UseStartTLS() {
		ops++
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: StartTLS with %s: %w%s", t.Addr, c.URL, err, tlsAdvice(err))
		}
	}
	tg := &target{addr: t.Addr, cfg: c, conn: conn, uid: map[string]string{}, report: opts.Progress, log: opts.Log}
	tg.ops.Add(ops)
	n := c.MaxConcurrency
	if n <= 0 {
		n = config.DefaultLDAPMaxConcurrency
	}
	tg.sem = make(chan struct{}, n)
	if c.BindDN != "" {
		tg.ops.Add(1)
		began := time.Now()
		err := conn.Bind(c.BindDN, password)
		if opts.Log != nil {
			logged := err
			if err != nil {
				logged = scrub(err, password)
			}
			debuglog.Op(ctx, opts.Log, "ldap bind", began, logged, slog.String("target", t.Addr), slog.String("bind_dn", c.BindDN), ldapCode(err))
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: bind to %s as %q: %w%s", t.Addr, c.URL, c.BindDN, scrub(err, password), bindAdvice(err))
		}
	}
	if c.TTLLinks {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := tg.checkLinkTTL(ctx); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return tg, nil
}

func tlsConfig(c *config.LDAPTarget, host, baseDir string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		p := c.CAFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		pem, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", p)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func tlsAdvice(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "negative serial number"):
		return " (the server's certificate has a negative serial number, which Go refuses to parse even without verification; Samba's self-generated certificate does this about half the time: give the server a certificate of its own (Samba: 'tls certfile' and 'tls keyfile' in smb.conf) or re-issue it with a positive serial)"
	case strings.Contains(s, "x509:") || strings.Contains(s, "tls:"):
		return " (check that the server's certificate is valid for this host name and signed by a CA you trust; set ca_file to the CA's PEM file)"
	case strings.Contains(s, "connection refused") || strings.Contains(s, "i/o timeout") || strings.Contains(s, "no such host"):
		return " (check the host, the port and that the server is running and reachable)"
	}
	return ""
}

func bindAdvice(err error) string {
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		return " (invalid credentials: check bind_dn and the password, e.g. the environment variable password = env(...) reads)"
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultConfidentialityRequired) || goldap.IsErrorWithCode(err, goldap.LDAPResultStrongAuthRequired) {
		return " (the server requires an encrypted connection: use ldaps:// or StartTLS)"
	}
	return ""
}

// scrub removes a secret from an error's text, in case a server echoes it.
func scrub(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "(sensitive)"))
}

func (t *target) Ops() int64 { return t.ops.Load() }

func (t *target) Close() error { return t.conn.Close() }

func (t *target) ad() bool { return t.cfg.Flavor == config.FlavorActiveDirectory }

// dnAttr is the attribute that holds an entry's own DN in filters.
func (t *target) dnAttr() string {
	if t.ad() {
		return "distinguishedName"
	}
	return "entryDN"
}

func (t *target) userBase() string {
	if t.cfg.UserBase != "" {
		return t.cfg.UserBase
	}
	return t.cfg.BaseDN
}

// acquire takes a slot of the concurrency bound, or gives up with ctx.
func (t *target) acquire(ctx context.Context) (release func(), err error) {
	select {
	case t.sem <- struct{}{}:
		return func() { <-t.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// search runs one subtree search, paged with the simple paged results
// control, bounded by the semaphore. Every page is one request and is
// counted as one round trip; ctx cancels the search between and during
// pages. A base that does not exist yields no entries.
func (t *target) search(ctx context.Context, base, filter string, attrs []string) ([]*goldap.Entry, error) {
	release, err := t.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	page := t.cfg.PageSize
	if page <= 0 {
		page = config.DefaultLDAPPageSize
	}
	paging := goldap.NewControlPaging(uint32(page))
	var out []*goldap.Entry
	for {
		req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, append([]goldap.Control{paging}, t.searchControls()...))
		entries, controls, err := t.do(ctx, req)
		if err != nil {
			if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return nil, nil
			}
			return nil, err
		}
		out = append(out, entries...)
		next, ok := goldap.FindControl(controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if !ok || len(next.Cookie) == 0 {
			return out, nil
		}
		paging.SetCookie(next.Cookie)
	}
}

// baseRead reads one entry's attributes (a base-scope search); nil when
// the entry does not exist.
func (t *target) baseRead(ctx context.Context, entryDN string, attrs []string) (*goldap.Entry, error) {
	return t.baseReadWith(ctx, entryDN, attrs, t.searchControls())
}

func (t *target) baseReadWith(ctx context.Context, entryDN string, attrs []string, controls []goldap.Control) (*goldap.Entry, error) {
	es, err := t.searchBaseWith(ctx, entryDN, "(objectClass=*)", attrs, controls)
	if err != nil || len(es) == 0 {
		return nil, err
	}
	return es[0], nil
}

// searchBase tests a filter against one entry (a base-scope search).
func (t *target) searchBase(ctx context.Context, entryDN, filter string, attrs []string) ([]*goldap.Entry, error) {
	return t.searchBaseWith(ctx, entryDN, filter, attrs, t.searchControls())
}

func (t *target) searchBaseWith(ctx context.Context, entryDN, filter string, attrs []string, controls []goldap.Control) ([]*goldap.Entry, error) {
	release, err := t.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	req := goldap.NewSearchRequest(entryDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, controls)
	es, _, err := t.do(ctx, req)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	return es, err
}

// errConnClosed: the connection to the server is gone (dropped or closed).
var errConnClosed = goldap.NewError(goldap.ErrorNetwork, errors.New("the connection to the server is closed (dropped by the network or the server); nothing was read"))

// do sends one search request and collects its answer: one round trip.
// The caller holds a semaphore slot.
func (t *target) do(ctx context.Context, req *goldap.SearchRequest) (entries []*goldap.Entry, ctrls []goldap.Control, err error) {
	t.ops.Add(1)
	if t.log != nil {
		began := time.Now()
		defer func() {
			attrs := []slog.Attr{slog.String("target", t.addr), slog.String("base", req.BaseDN), slog.Int("entries", len(entries)), ldapCode(err)}
			if debuglog.Tracing(ctx, t.log) {
				attrs = append(attrs, slog.String("filter", req.Filter), slog.Any("attributes", req.Attributes))
			}
			debuglog.Op(ctx, t.log, "ldap search", began, err, attrs...)
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if t.conn.IsClosing() {
		return nil, nil, errConnClosed
	}
	res := t.conn.SearchAsync(ctx, req, 64)
	for res.Next() {
		if e := res.Entry(); e != nil {
			entries = append(entries, e)
		}
	}
	if err := res.Err(); err != nil {
		return nil, nil, err
	}
	// go-ldap reports a cancelled search as a successful one.
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	// ... and a search on a connection that closed (a dropped link) as an
	// empty success: that would read as "no such group" or "no members".
	if t.conn.IsClosing() {
		return nil, nil, errConnClosed
	}
	return entries, res.Controls(), nil
}

func orFilter(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return "(|" + strings.Join(parts, "") + ")"
}

func chunks[T any](xs []T, n int) [][]T {
	var out [][]T
	for len(xs) > n {
		out = append(out, xs[:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}

// parallel runs fn over the chunks, bounded by the semaphore inside search.
func parallel[T any](ctx context.Context, cs [][]T, fn func(context.Context, []T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range cs {
		g.Go(func() error { return fn(ctx, c) })
	}
	return g.Wait()
}

func (t *target) rememberUID(canon, uid string) {
	if uid == "" {
		return
	}
	t.mu.Lock()
	t.uid[canon] = uid
	t.mu.Unlock()
}

func (t *target) uidOf(canon string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.uid[canon]
	return u, ok
}

// ldapCode is the LDAP result code of err as a log attribute (0 for nil,
// -1 when the error carries none: a network or client failure).
func ldapCode(err error) slog.Attr {
	if err == nil {
		return slog.Int("code", 0)
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		return slog.Int("code", int(le.ResultCode))
	}
	return slog.Int("code", -1)
}
