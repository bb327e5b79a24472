package winrmtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM is defined over MD4
)

// NTLM (MS-NLMP) as a Windows host answers it: a Negotiate message gets a
// challenge, and the Authenticate message's NTLMv2 proof is checked against
// the password: HMAC-MD5 keyed by NTOWFv2 over the server challenge and the
// client's blob. The handshake is bound to its TCP connection, as Windows
// binds it: a challenge issued on one connection cannot be answered on
// another, and a connection a login authenticated stays authenticated.

const (
	flagUnicode     = 0x00000001
	flagReqTarget   = 0x00000004
	flagNTLM        = 0x00000200
	flagTargetInfo  = 0x00800000
	flagExtSecurity = 0x00080000
	ntlmDomain      = "CORP"
)

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// challengeMessage builds a Type 2 message with a fresh server challenge.
func challengeMessage() (msg []byte, challenge [8]byte) {
	_, _ = rand.Read(challenge[:])
	target := utf16le(ntlmDomain)
	var info bytes.Buffer
	_ = binary.Write(&info, binary.LittleEndian, uint16(2)) // MsvAvNbDomainName
	_ = binary.Write(&info, binary.LittleEndian, uint16(len(target)))
	info.Write(target)
	info.Write([]byte{0, 0, 0, 0}) // MsvAvEOL
	const header = 48
	var m bytes.Buffer
	m.WriteString("NTLMSSP\x00")
	w := func(v any) { _ = binary.Write(&m, binary.LittleEndian, v) }
	w(uint32(2))
	w(uint16(len(target)))
	w(uint16(len(target)))
	w(uint32(header))
	w(uint32(flagUnicode | flagReqTarget | flagNTLM | flagExtSecurity | flagTargetInfo))
	m.Write(challenge[:])
	m.Write(make([]byte, 8))
	w(uint16(info.Len()))
	w(uint16(info.Len()))
	w(uint32(header + len(target)))
	m.Write(target)
	m.Write(info.Bytes())
	return m.Bytes(), challenge
}

func field(msg []byte, at int) ([]byte, error) {
	if len(msg) < at+8 {
		return nil, errors.New("short message")
	}
	l := int(binary.LittleEndian.Uint16(msg[at:]))
	off := int(binary.LittleEndian.Uint32(msg[at+4:]))
	if off < 0 || off+l > len(msg) {
		return nil, errors.New("field out of range")
	}
	return msg[off : off+l], nil
}

// verifyAuthenticate checks a Type 3 message against user and password.
func verifyAuthenticate(msg []byte, challenge [8]byte, user, password string) error {
	if len(msg) < 64 || string(msg[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(msg[8:]) != 3 {
		return errors.New("not an NTLM authenticate message")
	}
	nt, err := field(msg, 20)
	if err != nil || len(nt) < 16+28 {
		return errors.New("no NTLMv2 response")
	}
	dom, err1 := field(msg, 28)
	usr, err2 := field(msg, 36)
	if err1 != nil || err2 != nil {
		return errors.New("bad names")
	}
	wantDom, wantUser, _ := strings.Cut(user, `\`)
	if !strings.EqualFold(fromUTF16le(dom), wantDom) || !strings.EqualFold(fromUTF16le(usr), wantUser) {
		return errors.New("unknown user")
	}
	h := md4.New()
	h.Write(utf16le(password))
	owf := hmac.New(md5.New, h.Sum(nil))
	owf.Write(utf16le(strings.ToUpper(fromUTF16le(usr)) + fromUTF16le(dom)))
	proof := hmac.New(md5.New, owf.Sum(nil))
	proof.Write(challenge[:])
	proof.Write(nt[16:])
	if !hmac.Equal(proof.Sum(nil), nt[:16]) {
		return errors.New("wrong password")
	}
	return nil
}

// ntlm runs the handshake. It returns true when the request is
// authenticated; otherwise it has answered it.
func (s *Server) ntlm(w http.ResponseWriter, r *http.Request, schema, token string) bool {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(raw) < 12 {
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	conn := connID(r)
	switch binary.LittleEndian.Uint32(raw[8:]) {
	case 1:
		msg, ch := challengeMessage()
		// Windows binds the handshake to its TCP connection: the
		// challenge is valid on this connection only.
		s.mu.Lock()
		s.challenges[conn] = ch
		delete(s.authed, conn)
		closeAfter := s.CloseAfterChallenge
		s.mu.Unlock()
		if closeAfter {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("WWW-Authenticate", schema+" "+base64.StdEncoding.EncodeToString(msg))
		w.WriteHeader(http.StatusUnauthorized)
		return false
	case 3:
		s.mu.Lock()
		ch, ok := s.challenges[conn]
		delete(s.challenges, conn) // a challenge answers once
		matched := ok && verifyAuthenticate(raw, ch, s.User, s.Pass) == nil
		if matched {
			s.authed[conn] = true
			s.ntlmOK++
		}
		s.mu.Unlock()
		if matched {
			return true
		}
	}
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

// NTLMLogins counts requests authenticated by NTLM.
func (s *Server) NTLMLogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ntlmOK
}
