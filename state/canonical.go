package state

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Reading a ledger checks that every line is canonical. Doing that by
// decoding and re-encoding each payload costs most of a read, so the two
// helpers here check and write the canonical form directly. They must
// agree byte for byte with CanonicalJSON and encoding/json; the tests
// compare them on fuzzed input.

// isCanonicalJSON reports whether b is exactly what CanonicalJSON(b)
// returns: one JSON value, no insignificant whitespace, object keys in
// strictly increasing order, strings escaped as encoding/json escapes
// them (without HTML escaping), numbers in any valid form (kept as written).
func isCanonicalJSON(b []byte) bool {
	rest, ok := canonValue(b, 0)
	return ok && len(rest) == 0
}

// maxDepth is encoding/json's nesting limit: deeper input is not JSON to it.
const maxDepth = 10000

func canonValue(b []byte, depth int) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch c := b[0]; {
	case c == '{':
		if depth+1 > maxDepth {
			return nil, false
		}
		b = b[1:]
		if len(b) > 0 && b[0] == '}' {
			return b[1:], true
		}
		var prev []byte
		for first := true; ; first = false {
			key, rest, ok := canonStringBytes(b)
			if !ok || (!first && bytes.Compare(key, prev) <= 0) || len(rest) == 0 || rest[0] != ':' {
				return nil, false
			}
			prev = key
			if b, ok = canonValue(rest[1:], depth+1); !ok || len(b) == 0 {
				return nil, false
			}
			switch b[0] {
			case ',':
				b = b[1:]
			case '}':
				return b[1:], true
			default:
				return nil, false
			}
		}
	case c == '[':
		if depth+1 > maxDepth {
			return nil, false
		}
		b = b[1:]
		if len(b) > 0 && b[0] == ']' {
			return b[1:], true
		}
		for {
			var ok bool
			if b, ok = canonValue(b, depth+1); !ok || len(b) == 0 {
				return nil, false
			}
			switch b[0] {
			case ',':
				b = b[1:]
			case ']':
				return b[1:], true
			default:
				return nil, false
			}
		}
	case c == '"':
		_, rest, ok := canonString(b)
		return rest, ok
	case c == '-' || c >= '0' && c <= '9':
		return canonNumber(b)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(b) >= len(lit) && string(b[:len(lit)]) == lit {
				return b[len(lit):], true
			}
		}
		return nil, false
	}
}

// canonString checks one string in canonical form and returns its value.
func canonString(b []byte) (string, []byte, bool) {
	v, rest, ok := canonStringBytes(b)
	return string(v), rest, ok
}

// canonStringBytes is canonString returning the value as bytes; a value
// without escapes or non-ASCII characters is a slice of b (no copy).
func canonStringBytes(b []byte) ([]byte, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	j := 1
	// Eight bytes at a time while none is special (a quote, a backslash, a
	// control character or non-ASCII): hashes, IDs and addresses are long
	// plain runs, and this loop is much of a ledger read.
	for ; j+8 <= len(b); j += 8 {
		if hasSpecialByte(binary.LittleEndian.Uint64(b[j:])) {
			break
		}
	}
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return b[1:j], b[j+1:], true
		}
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	var val []byte
	for i := 1; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return val, b[i+1:], true
		case c == '\\':
			if i+1 >= len(b) {
				return nil, nil, false
			}
			switch e := b[i+1]; e {
			case '"', '\\':
				val = append(val, e)
				i += 2
			case 'b':
				val = append(val, '\b')
				i += 2
			case 'f':
				val = append(val, '\f')
				i += 2
			case 'n':
				val = append(val, '\n')
				i += 2
			case 'r':
				val = append(val, '\r')
				i += 2
			case 't':
				val = append(val, '\t')
				i += 2
			case 'u':
				if i+6 > len(b) {
					return nil, nil, false
				}
				h := string(b[i+2 : i+6])
				switch {
				case h == "2028":
					val = utf8.AppendRune(val, '\u2028')
				case h == "2029":
					val = utf8.AppendRune(val, '\u2029')
				case h[0] == '0' && h[1] == '0' && (h[2] == '0' || h[2] == '1') && isLowerHex(h[3]):
					n, _ := strconv.ParseUint(h, 16, 8)
					if n == '\b' || n == '\f' || n == '\n' || n == '\r' || n == '\t' {
						return nil, nil, false // written as \b, \f, \n, \r, \t
					}
					val = append(val, byte(n))
				default:
					return nil, nil, false
				}
				i += 6
			default:
				return nil, nil, false
			}
		case c < 0x20:
			return nil, nil, false
		case c < utf8.RuneSelf:
			i++
			j := i
			for j < len(b) && b[j] >= 0x20 && b[j] < utf8.RuneSelf && b[j] != '"' && b[j] != '\\' {
				j++
			}
			val = append(val, b[i-1:j]...)
			i = j
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				return nil, nil, false
			}
			val = append(val, b[i:i+size]...)
			i += size
		}
	}
	return nil, nil, false
}

// hasSpecialByte reports whether one of the eight bytes of x is a quote, a
// backslash, below 0x20 or at least 0x80. (A byte-wise "has zero byte"
// test: it may only err on a byte after a true hit, which does not matter
// here since the caller then goes byte by byte.)
func hasSpecialByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(x-ones*0x20)&^x|x)&highs != 0
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// canonNumber checks a JSON number (RFC 8259 grammar).
func canonNumber(b []byte) ([]byte, bool) {
	i := 0
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return b[i:], true
}

// appendEvent appends the canonical line of e, whose payload must already
// be canonical: what encoding/json writes for the Event struct without
// HTML escaping.
func appendEvent(dst []byte, e Event) ([]byte, error) {
	t, err := e.Time.MarshalJSON()
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":`...)
	dst = append(dst, t...)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"actor":`...)
	dst = appendJSONString(dst, e.Actor)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, e.Payload...)
	if e.Sig != "" {
		dst = append(dst, `,"sig":`...)
		dst = appendJSONString(dst, e.Sig)
	}
	dst = append(dst, `,"prev":`...)
	dst = appendJSONString(dst, e.Prev)
	dst = append(dst, `,"hash":`...)
	dst = appendJSONString(dst, e.Hash)
	return append(dst, '}'), nil
}

// appendJSONString writes s as encoding/json does without HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
