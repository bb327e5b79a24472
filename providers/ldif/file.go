package ldif

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldif"

	"github.com/jitform/jitform/internal/dn"
)

// directory is a parsed LDIF file: its entries in file order, indexed by
// canonical DN.
type directory struct {
	path    string
	version int
	entries []*goldap.Entry
	canon   []string       // canonical DN of entries[i]
	byDN    map[string]int // canonical DN -> index in entries
	// byName indexes the naming attributes principals are looked up by:
	// lowercased attribute -> lowercased value -> entry indexes.
	byName map[string]map[string][]int

	// raw is the file as read and spans[i] the byte range of entry i's
	// record (dn: line to the end of its last line), when every record
	// could be located; a rewrite then replaces only changed records and
	// keeps the rest of the file, comments included, byte for byte.
	raw   []byte
	spans [][2]int
	dirty map[int]bool // entries changed since read
	// deleted: entries removed since read (kept in entries as tombstones,
	// so indexes stay valid); entries past len(spans) were added.
	deleted map[int]bool
}

// live is the entries the file holds: without the deleted ones.
func (d *directory) live() []*goldap.Entry {
	if len(d.deleted) == 0 {
		return d.entries
	}
	out := make([]*goldap.Entry, 0, len(d.entries))
	for i, e := range d.entries {
		if !d.deleted[i] {
			out = append(out, e)
		}
	}
	return out
}

// structural reports whether entries were added or deleted since read.
func (d *directory) structural() bool {
	return len(d.deleted) > 0 || d.spans != nil && len(d.entries) > len(d.spans)
}

// addEntry adds e; the DN index is copied first, since a clone shares it
// with the directory it was cloned from.
func (d *directory) addEntry(e *goldap.Entry, canon string) {
	d.byDN = maps.Clone(d.byDN)
	d.canon = append(slices.Clip(d.canon), canon)
	d.byDN[canon] = len(d.entries)
	d.entries = append(d.entries, e)
}

// deleteEntry removes entry i.
func (d *directory) deleteEntry(i int) {
	d.byDN = maps.Clone(d.byDN)
	delete(d.byDN, d.canon[i])
	if d.deleted == nil {
		d.deleted = map[int]bool{}
	}
	d.deleted[i] = true
}

// namingAttrs are the attributes Resolve and posixGroup memberUid look
// up, lowercased.
var namingAttrs = []string{"uid", "samaccountname", "userprincipalname"}

// index builds byName; called once the entries are final.
func (d *directory) index() {
	d.byName = map[string]map[string][]int{}
	for _, a := range namingAttrs {
		d.byName[a] = map[string][]int{}
	}
	for i, e := range d.entries {
		for _, a := range e.Attributes {
			m := d.byName[strings.ToLower(a.Name)]
			if m == nil {
				continue
			}
			for _, v := range a.Values {
				k := strings.ToLower(v)
				if ix := m[k]; len(ix) == 0 || ix[len(ix)-1] != i {
					m[k] = append(ix, i)
				}
			}
		}
	}
}

// withName returns the entries whose attribute attr has value v,
// case-insensitively (uid, sAMAccountName and userPrincipalName match
// so on the servers).
func (d *directory) withName(attr, v string) []int {
	return d.byName[strings.ToLower(attr)][strings.ToLower(v)]
}

// loadFile reads and parses path. Any problem is reported as path:line.
func loadFile(path string) (*directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read LDIF %s: %w", path, err)
	}
	return parseLDIF(path, b)
}

// parseLDIF parses an LDIF content file (no change records) with
// go-ldap/ldif and indexes it.
func parseLDIF(path string, b []byte) (d *directory, err error) {
	if err := rejectURLValues(path, b); err != nil {
		return nil, err
	}
	// The parser indexes slices it has not checked on some inputs; a
	// hostile file must give an error, not take the process down.
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%s: malformed LDIF (parser failed: %v)", path, r)
		}
	}()
	l, err := ldif.Parse(string(b))
	if err != nil {
		var pe *ldif.ParseError
		if errors.As(err, &pe) {
			// The parser counts the line that ends the record; name the
			// record's first line too, where a reader starts looking.
			start := recordStart(bytes.Split(b, []byte("\n")), pe.Line)
			if start > 0 && start < pe.Line {
				return nil, fmt.Errorf("%s:%d: malformed LDIF in the record at lines %d-%d: %s", path, start, start, pe.Line, pe.Message)
			}
			return nil, fmt.Errorf("%s:%d: malformed LDIF: %s", path, pe.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: malformed LDIF: %w", path, err)
	}
	lines := bytes.Split(b, []byte("\n"))
	dnLines := recordLines(lines)
	lineOf := func(i int) string {
		if len(dnLines) == len(l.Entries) {
			return fmt.Sprintf("%s:%d", path, dnLines[i])
		}
		return fmt.Sprintf("%s: record %d", path, i+1)
	}
	d = &directory{path: path, version: l.Version, byDN: map[string]int{}}
	aligned := len(dnLines) == len(l.Entries)
	if aligned {
		d.raw, d.spans = b, recordSpans(lines, dnLines)
	}
	for i, e := range l.Entries {
		if e.Entry == nil {
			return nil, fmt.Errorf("%s: change record (changetype) in an LDIF target: it must be a content export, one entry per record", lineOf(i))
		}
		c, err := dn.Canonical(e.Entry.DN)
		if err != nil {
			return nil, fmt.Errorf("%s: dn: %w", lineOf(i), err)
		}
		if j, dup := d.byDN[c]; dup {
			return nil, fmt.Errorf("%s: duplicate entry %q (same DN as %s)", lineOf(i), e.Entry.DN, lineOf(j))
		}
		if aligned {
			keepOrder(e.Entry, lines, dnLines[i])
		}
		d.byDN[c] = len(d.entries)
		d.entries = append(d.entries, e.Entry)
		d.canon = append(d.canon, c)
	}
	d.index()
	return d, nil
}

// rejectURLValues refuses "attr:< URL" values: go-ldap/ldif would read
// the named local file into the directory (and we would write it out).
func rejectURLValues(path string, b []byte) error {
	check := func(line string, n int) error {
		if line == "" || line[0] == '#' {
			return nil
		}
		if i := strings.IndexByte(line, ':'); i >= 0 && i+1 < len(line) && line[i+1] == '<' {
			return fmt.Errorf("%s:%d: URL value (%s:<) not accepted: an LDIF target must hold its values inline", path, n, line[:i])
		}
		return nil
	}
	var cur string
	curLine := 0
	for n, raw := range bytes.Split(b, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		if strings.HasPrefix(line, " ") {
			if !strings.HasPrefix(cur, "#") {
				cur += line[1:]
			}
			continue
		}
		if err := check(cur, curLine); err != nil {
			return err
		}
		cur, curLine = line, n+1
	}
	return check(cur, curLine)
}

// keepOrder puts the entry's attributes back in the order the file has
// them (go-ldap/ldif sorts them by name), so a rewrite changes only what
// it must. It reads only attribute names from the record's lines; values
// come from the parser.
func keepOrder(e *goldap.Entry, lines [][]byte, dnLine int) {
	pos := map[string]int{}
	for n := dnLine; n < len(lines); n++ { // lines[dnLine] is the line after dn:
		l := bytes.TrimRight(lines[n], "\r")
		if len(l) == 0 {
			break
		}
		if l[0] == '#' || l[0] == ' ' {
			continue
		}
		if i := bytes.IndexByte(l, ':'); i > 0 {
			if _, seen := pos[string(l[:i])]; !seen {
				pos[string(l[:i])] = len(pos)
			}
		}
	}
	slices.SortStableFunc(e.Attributes, func(x, y *goldap.EntryAttribute) int {
		px, okx := pos[x.Name]
		py, oky := pos[y.Name]
		switch {
		case okx && oky:
			return px - py
		case okx:
			return -1
		case oky:
			return 1
		}
		return 0
	})
}

// recordSpans returns the byte range of each record: from its dn: line to
// the end of the line before the next blank line (or the end of file).
func recordSpans(lines [][]byte, dnLines []int) [][2]int {
	offs := make([]int, len(lines)+1)
	for n, l := range lines {
		offs[n+1] = offs[n] + len(l) + 1
	}
	total := offs[len(lines)] - 1 // no newline after the last line
	spans := make([][2]int, len(dnLines))
	for i, dl := range dnLines {
		end := total
		for n := dl; n < len(lines); n++ { // lines[dl] is the line after dn:
			if len(bytes.TrimRight(lines[n], "\r")) == 0 {
				end = offs[n]
				break
			}
		}
		spans[i] = [2]int{offs[dl-1], end}
	}
	return spans
}

// recordStart returns the first line of the record that ends at line
// end: the first non-blank, non-comment line after the previous blank one.
func recordStart(lines [][]byte, end int) int {
	start := 0
	for n := min(end, len(lines)); n >= 1; n-- {
		l := bytes.TrimRight(lines[n-1], "\r")
		switch {
		case len(l) == 0 && start > 0:
			return start
		case len(l) == 0, l[0] == '#', l[0] == ' ':
		default:
			start = n
		}
	}
	return start
}

// recordLines returns the line number of each "dn:" line that starts a
// record, to name the line of an entry-level problem.
func recordLines(lines [][]byte) []int {
	var out []int
	for n, raw := range lines {
		if bytes.HasPrefix(raw, []byte("dn:")) {
			out = append(out, n+1)
		}
	}
	return out
}

// clone copies the directory deeply enough that Apply can change member
// attributes without touching the original until the write succeeds.
func (d *directory) clone() *directory {
	// The index stays valid: Apply changes only member attributes.
	c := &directory{path: d.path, version: d.version, canon: d.canon, byDN: d.byDN, byName: d.byName,
		raw: d.raw, spans: d.spans, dirty: map[int]bool{}}
	c.entries = make([]*goldap.Entry, len(d.entries))
	for i, e := range d.entries {
		ne := &goldap.Entry{DN: e.DN, Attributes: make([]*goldap.EntryAttribute, len(e.Attributes))}
		for j, a := range e.Attributes {
			ne.Attributes[j] = goldap.NewEntryAttribute(a.Name, slices.Clone(a.Values))
		}
		c.entries[i] = ne
	}
	return c
}

// marshal encodes the directory with go-ldap/ldif and checks the result
// parses back to exactly the same entries: the library's encoder does not
// base64 a DN that needs it, nor a value with a leading space, and writes
// an empty value it cannot read back; we refuse to write such a file.
func (d *directory) marshal() ([]byte, error) {
	var out []byte
	var err error
	if d.raw != nil && d.spans != nil && len(d.spans) <= len(d.entries) {
		out, err = d.splice()
	} else {
		out, err = d.encodeAll()
	}
	if err != nil {
		return nil, err
	}
	back, err := parseLDIF(d.path, out)
	if err != nil {
		return nil, fmt.Errorf("encode %s: the encoded file does not parse back (%v); nothing written", d.path, err)
	}
	if err := sameEntries(d.live(), back.entries); err != nil {
		return nil, fmt.Errorf("encode %s: go-ldap/ldif cannot round-trip %v; nothing written", d.path, err)
	}
	return out, nil
}

// splice is the file as read with only the changed records re-encoded.
func (d *directory) splice() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(d.raw) + 256)
	// Keep a CRLF file CRLF: encoded values never hold a raw newline.
	crlf := bytes.Contains(d.raw[:max(0, bytes.IndexByte(d.raw, '\n'))+1], []byte("\r\n"))
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	prev := 0
	for i, e := range d.entries[:len(d.spans)] {
		if d.deleted[i] {
			// Drop the record, and the blank line after it.
			buf.Write(d.raw[prev:d.spans[i][0]])
			prev = d.spans[i][1]
			rest := d.raw[prev:]
			if bytes.HasPrefix(rest, []byte(nl)) {
				prev += len(nl)
			}
			continue
		}
		if !d.dirty[i] {
			continue
		}
		rec, err := encodeEntry(e)
		if err != nil {
			return nil, err
		}
		buf.Write(d.raw[prev:d.spans[i][0]])
		// The span ends after the record's last newline; rec ends with
		// the blank line that separates records, which the file keeps.
		rec = strings.TrimSuffix(rec, "\n")
		if crlf {
			rec = strings.ReplaceAll(rec, "\n", "\r\n")
		}
		buf.WriteString(rec)
		prev = d.spans[i][1]
	}
	buf.Write(d.raw[prev:])
	// Added entries go at the end, after a blank line.
	for i, e := range d.entries[len(d.spans):] {
		if d.deleted[len(d.spans)+i] {
			continue
		}
		rec, err := encodeEntry(e)
		if err != nil {
			return nil, err
		}
		if b := buf.Bytes(); len(b) > 0 && !bytes.HasSuffix(b, []byte(nl+nl)) {
			if !bytes.HasSuffix(b, []byte(nl)) {
				buf.WriteString(nl)
			}
			buf.WriteString(nl)
		}
		if crlf {
			rec = strings.ReplaceAll(rec, "\n", "\r\n")
		}
		buf.WriteString(rec)
	}
	return buf.Bytes(), nil
}

// encodeAll encodes every entry, for a file whose records could not be
// located (comments are then lost).
func (d *directory) encodeAll() ([]byte, error) {
	var buf bytes.Buffer
	if d.version > 0 {
		buf.WriteString("version: 1\n\n")
	}
	for _, e := range d.live() {
		rec, err := encodeEntry(e)
		if err != nil {
			return nil, err
		}
		buf.WriteString(rec)
	}
	return buf.Bytes(), nil
}

// encodeEntry encodes one record, ending with a blank line. go-ldap/ldif
// encodes the attributes under a stand-in DN and we write the DN line
// ourselves, base64 when RFC 2849 requires it (the library never does).
func encodeEntry(e *goldap.Entry) (string, error) {
	const stand = "dn: x\n"
	s, err := ldif.Marshal(&ldif.LDIF{Entries: []*ldif.Entry{{Entry: &goldap.Entry{DN: "x", Attributes: e.Attributes}}}})
	if err != nil {
		return "", fmt.Errorf("encode entry %q: %w", e.DN, err)
	}
	return dnLine(e.DN) + strings.TrimPrefix(s, stand), nil
}

// dnLine writes "dn: value", or "dn:: base64" when the DN is not an RFC
// 2849 SAFE-STRING.
func dnLine(s string) string {
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\n' || c == '\r' || c > 0x7f || i == 0 && (c == ' ' || c == ':' || c == '<') {
			safe = false
			break
		}
	}
	if safe && !strings.HasSuffix(s, " ") {
		return "dn: " + s + "\n"
	}
	return "dn:: " + base64.StdEncoding.EncodeToString([]byte(s)) + "\n"
}

func sameEntries(want, got []*goldap.Entry) error {
	if len(want) != len(got) {
		return fmt.Errorf("entry count %d became %d", len(want), len(got))
	}
	for i := range want {
		if want[i].DN != got[i].DN {
			return fmt.Errorf("DN %q became %q", want[i].DN, got[i].DN)
		}
		w, g := attrMap(want[i]), attrMap(got[i])
		for name, vs := range w {
			if !slices.Equal(vs, g[name]) {
				return fmt.Errorf("attribute %s of %q (a value with a leading space or an empty value?)", name, want[i].DN)
			}
		}
		if len(w) != len(g) {
			return fmt.Errorf("the attributes of %q", want[i].DN)
		}
	}
	return nil
}

func attrMap(e *goldap.Entry) map[string][]string {
	m := map[string][]string{}
	for _, a := range e.Attributes {
		if len(a.Values) > 0 {
			m[a.Name] = append(m[a.Name], a.Values...)
		}
	}
	return m
}

// writeAtomic replaces path with data so that a reader sees the old file
// or the new one, never a mix: temp file in the same directory, fsync,
// rename, fsync the directory. Errors after the rename are returned with
// renamed=true: the new content is in place but may not be durable.
func writeAtomic(path string, data []byte) (renamed bool, err error) {
	// Replace the file a symlink points to, not the link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("replace %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return true, fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return true, fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return true, nil
}
