// Authentication in pool mode. memcached authenticates a connection, and pool mode shares each upstream
// connection between many clients, so a client's login must never reach one: it would log in every other client
// of the connection. Two separate logins take its place:
//
//   - upstream: every new upstream connection does a handshake before any client byte is written on it (a
//     version request; on text connections an ascii auth token and on binary ones SASL PLAIN with the proxy's
//     own credentials, pool.upstream_auth_file, when the server asks for a login). Requests routed to the
//     connection meanwhile wait in its queue. A connection whose login failed, or that has no credentials to
//     offer, forwards nothing and answers every request with SERVER_ERROR until server_retry_timeout passes or
//     the configuration changes, then dials again.
//   - clients: with pool.client_auth_file, a client logs in to the proxy itself (an ascii auth token exactly as
//     memcached -Y parses it, or binary SASL PLAIN as memcached -S answers it) before any request of it is
//     routed. SASL requests are answered here in every configuration and never forwarded.
//
// Auth exchanges carry secrets: they are never recorded, logged or counted by size.
package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// The answers a request gets from a connection that cannot log in upstream (binary: status 0x0086 with this
// text, as for other upstream errors).
const (
	upAuthRequiredText = "SERVER_ERROR upstream requires authentication (set pool.upstream_auth_file)"
	upAuthFailedText   = "SERVER_ERROR upstream authentication failed"
)

var (
	upAuthErrors     = Metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="auth"}`)
	clientAuthOK     = Metrics.NewCounter(`membench_proxy_client_auth_total{result="ok"}`)
	clientAuthFailed = Metrics.NewCounter(`membench_proxy_client_auth_total{result="failed"}`)
	clientAuthDenied = Metrics.NewCounter(`membench_proxy_client_auth_total{result="unauthenticated"}`)
)

// Binary opcodes and statuses of the handshake and of SASL (memcached's protocol_binary.h).
const (
	binOpVersion   = 0x0b
	binOpSASLList  = 0x20
	binOpSASLAuth  = 0x21
	binMaxSASLMech = 32 // memcached's MAX_SASL_MECH_LEN
)

// upHandshake is an upstream connection's login state; its zero value is a handshake not yet started.
type upHandshake struct {
	done    bool   // the handshake is over: client bytes may be written
	step    hsStep // what the next answer is for
	version string // the server's version, when it told
	// refusal, when set, is the text every request on this connection is answered with: the login failed or the
	// server wants one the proxy cannot give. The connection is closed and forwards nothing.
	refusal    string
	refusedAt  time.Time
	refusedGen uint64 // the loop's pool generation at the refusal: a reload retries at once
	answering  bool   // a task answering the refused requests is queued
}

type hsStep uint8

const (
	hsVersion      hsStep = iota // text: "version" sent; binary: VERSION sent (then the SASL mechanism list)
	hsMechs                      // binary: waiting for the SASL mechanism list
	hsLogin                      // the proxy's credentials sent
	hsVersionAgain               // text: "version" sent again after the login
)

// Version returns the server's version as the handshake's version request answered it ("1.6.18"), or "" when
// it has not answered (yet).
func (uc *upConn) Version() string { return uc.hs.version }

// Version returns the version the server's latest handshake reported, or "" when none has.
func (us *upServer) Version() string { return us.version }

// startHandshake runs when the dial completed. Bytes queued in out wait for handshakeDone.
func (uc *upConn) startHandshake() {
	uc.hs.step = hsVersion
	if uc.binary {
		// VERSION and the mechanism list are both allowed before a SASL login; a server without SASL answers the
		// list "unknown command" and keeps the connection.
		b := appendBinRequest(nil, binOpVersion, 0, nil, nil)
		uc.handshakeWrite(appendBinRequest(b, binOpSASLList, 1, nil, nil))
		return
	}
	uc.handshakeWrite([]byte("version\r\n"))
}

func (uc *upConn) handshakeWrite(b []byte) {
	_, _ = uc.c.Write(b) // gnet copies what it cannot write now
	upBytesOut.Add(len(b))
	clear(b) // it may hold the password
}

// handshakeRead consumes the handshake's answers; it replaces fromUpstream until the handshake is over. memcached
// loses an error answer when another request follows it in the same read, so each step waits for its answer.
func (uc *upConn) handshakeRead() gnet.Action {
	if uc.dead {
		return gnet.Close // closed by closeIfIdle or failAll: never write to it again
	}
	c := uc.c
	buf, _ := c.Peek(-1)
	pos := 0
	for pos < len(buf) && !uc.hs.done && uc.hs.refusal == "" {
		n, err := uc.respP.Parse(buf[pos:], &uc.resp)
		if err == mcproto.ErrIncomplete {
			break
		}
		if err != nil {
			upBadResponses.Inc()
			uc.failAll("SERVER_ERROR bad response from upstream", true)
			return gnet.Close
		}
		frame := buf[pos : pos+n]
		pos += n
		if !uc.handshakeAnswer(&uc.resp, frame) {
			upBadResponses.Inc()
			uc.failAll("SERVER_ERROR bad response from upstream", true)
			return gnet.Close
		}
	}
	upBytesIn.Add(pos)
	if uc.hs.refusal != "" {
		return gnet.None // refuse closed the connection
	}
	if pos > 0 {
		_, _ = c.Discard(pos)
	}
	if uc.hs.done {
		uc.handshakeDone()
		if pos < len(buf) && !uc.dead {
			return uc.fromUpstream() // nothing was asked yet: these are orphans, counted there
		}
	}
	return gnet.None
}

// handshakeAnswer takes one answer of the handshake and sends the next step; false means an answer the step
// cannot get from memcached.
func (uc *upConn) handshakeAnswer(r *mcproto.Response, frame []byte) bool {
	if uc.binary {
		return uc.binaryHandshakeAnswer(r, frame)
	}
	switch uc.hs.step {
	case hsVersion:
		switch {
		case r.Kind == mcproto.RespVersion:
			uc.setVersion(bytes.TrimPrefix(r.Line, []byte("VERSION ")))
			uc.hs.done = true
		case r.Kind == mcproto.RespClientError && string(r.Line) == "CLIENT_ERROR unauthenticated":
			user, pass, ok := uc.pl.st.cfg.Auth().Upstream()
			if !ok {
				uc.refuse(upAuthRequiredText, "")
				return true
			}
			// memcached -Y: "set <any key> <flags> <exptime> <bytes>" with "<user> <password>" as the value.
			token := make([]byte, 0, 32+len(user)+len(pass))
			token = append(token, "set auth 0 0 "...)
			token = strconv.AppendInt(token, int64(len(user)+1+len(pass)), 10)
			token = append(append(append(append(append(token, "\r\n"...), user...), ' '), pass...), "\r\n"...)
			uc.hs.step = hsLogin
			uc.handshakeWrite(token)
		case r.Kind == mcproto.RespUnknown:
			return false
		default:
			uc.hs.done = true // a server that knows no version command and asks for no login
		}
	case hsLogin:
		if r.Kind != mcproto.RespStored {
			uc.refuse(upAuthFailedText, "")
			return true
		}
		uc.hs.step = hsVersionAgain
		uc.handshakeWrite([]byte("version\r\n"))
	case hsVersionAgain:
		if r.Kind == mcproto.RespVersion {
			uc.setVersion(bytes.TrimPrefix(r.Line, []byte("VERSION ")))
		}
		uc.hs.done = true
	}
	return true
}

func (uc *upConn) binaryHandshakeAnswer(r *mcproto.Response, frame []byte) bool {
	value := frame[r.HeaderLen:]
	switch uc.hs.step {
	case hsVersion:
		if r.Opcode != binOpVersion {
			return false
		}
		if r.BinStatus == mcproto.BinStatusSuccess {
			uc.setVersion(value)
		}
		uc.hs.step = hsMechs
	case hsMechs:
		if r.Opcode != binOpSASLList {
			return false
		}
		if r.BinStatus != mcproto.BinStatusSuccess && r.BinStatus != mcproto.BinStatusAuthError {
			uc.hs.done = true // no SASL: memcached without -S answers "unknown command"
			return true
		}
		user, pass, ok := uc.pl.st.cfg.Auth().Upstream()
		if !ok {
			uc.refuse(upAuthRequiredText, "")
			return true
		}
		if r.BinStatus == mcproto.BinStatusSuccess && !hasMech(value, "PLAIN") {
			uc.refuse(upAuthFailedText, "the server does not offer SASL PLAIN (it offers "+strconv.Quote(string(value))+")")
			return true
		}
		msg := make([]byte, 0, 2+len(user)+len(pass))
		msg = append(append(append(append(msg, 0), user...), 0), pass...)
		uc.hs.step = hsLogin
		uc.handshakeWrite(appendBinRequest(nil, binOpSASLAuth, 2, []byte("PLAIN"), msg))
		clear(msg)
	case hsLogin:
		if r.Opcode != binOpSASLAuth {
			return false
		}
		if r.BinStatus != mcproto.BinStatusSuccess {
			uc.refuse(upAuthFailedText, "")
			return true
		}
		uc.hs.done = true
	}
	return true
}

// hasMech reports whether the space-separated SASL mechanism list holds mech (names are case-insensitive).
func hasMech(list []byte, mech string) bool {
	for _, m := range strings.Fields(string(list)) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func (uc *upConn) setVersion(v []byte) {
	uc.hs.version = string(v)
	uc.srv.version = uc.hs.version
}

// handshakeDone lets the requests queued during the handshake go out.
func (uc *upConn) handshakeDone() {
	uc.pl.p.authLogClear(uc.srv)
	if len(uc.out) > 0 && !uc.isDirty {
		_, _ = uc.c.Write(uc.out)
		upBytesOut.Add(len(uc.out))
		uc.out = uc.out[:0]
	}
	if uc.srv.retired {
		uc.closeIfIdle()
	}
}

// refuse ends a handshake that cannot log in: the connection closes, its queued bytes are dropped, and its
// requests, those waiting and those routed to it until a retry, are answered with text.
func (uc *upConn) refuse(text, detail string) {
	upAuthErrors.Inc()
	uc.pl.p.authLogOnce(uc.srv, text, detail)
	uc.hs.refusal, uc.hs.refusedAt, uc.hs.refusedGen = text, time.Now(), uc.pl.version
	clear(uc.out)
	uc.out = uc.out[:0]
	c := uc.c
	uc.c = nil
	// Detached from uc first: its OnClose must not fail the requests again or count a server failure.
	c.SetContext(nil)
	_ = c.Close()
	uc.answerRefused()
}

// refused handles a request routed to a connection that refuses: it is queued to be answered with the refusal
// text by a loop task (never inside send: a slot must not complete while its request is being routed), or, once
// server_retry_timeout has passed or the configuration changed, the connection dials again and the request waits
// for the new handshake. It reports whether send must stop.
func (uc *upConn) refused(sr *subReq, now int64) bool {
	// Requests still waiting for their refusal are answered first: a new handshake's answers must not reach them.
	retry := time.Since(uc.hs.refusedAt) >= time.Duration(uc.pl.st.cfg.RetryTimeout) || uc.pl.version != uc.hs.refusedGen
	if retry && uc.pending() == 0 {
		uc.hs = upHandshake{}
		uc.respP.Reset()
		uc.pl.dial(uc)
		return false
	}
	if sr == nil {
		return true // a shadow copy: dropped
	}
	sr.sent = now
	uc.fifo = append(uc.fifo, sr)
	if uc.pl.oldest.Load() == 0 {
		uc.pl.oldest.Store(now)
	}
	if !uc.hs.answering {
		uc.hs.answering = true
		task := gnet.RunnableFunc(func(context.Context) error {
			uc.hs.answering = false
			uc.answerRefused()
			return nil
		})
		if err := uc.pl.el.Execute(context.Background(), task); err != nil {
			uc.hs.answering = false // the loop is stopping: nobody will read these answers
		}
	}
	return true
}

// answerRefused answers every waiting request with the refusal text.
func (uc *upConn) answerRefused() {
	if uc.dead || uc.hs.refusal == "" {
		return
	}
	now := time.Now().UnixNano()
	var touched []*pclient
	for uc.pending() > 0 {
		sr := uc.pop()
		sr.sl.fail(uc.hs.refusal)
		sr.sl.subDone(now)
		touched = append(touched, sr.sl.cl)
		uc.pl.release(sr)
	}
	for _, cl := range touched {
		cl.flush(now)
	}
	uc.updateOldest()
	if uc.srv.retired {
		uc.closeIfIdle()
	}
}

// appendBinRequest appends a binary request with no extras and no cas.
func appendBinRequest(dst []byte, op uint8, opaque uint32, key, value []byte) []byte {
	var h [24]byte
	h[0] = 0x80
	h[1] = op
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:12], uint32(len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return append(append(append(dst, h[:]...), key...), value...)
}

// authLogged holds, per pool and server address, the refusal last logged, so that each server's login problem
// is logged once (an ERROR naming the config key), not once per connection or request.
var authLogged sync.Map // authLogKey → string

type authLogKey struct {
	p      *pool
	addr   string
	shadow bool
}

func (p *pool) authLogOnce(us *upServer, text, detail string) {
	k := authLogKey{p: p, addr: us.addr, shadow: us.shadow}
	if prev, ok := authLogged.Swap(k, text); ok && prev == text {
		return
	}
	role := "pool server"
	if us.shadow {
		role = "shadow pool server"
	}
	if text == upAuthRequiredText {
		p.s.log.Error(role+" requires a login and pool.upstream_auth_file is not set: its requests fail "+
			"with SERVER_ERROR until it is", "server", us.addr)
		return
	}
	args := []any{"server", us.addr, "pool.upstream_auth_file", p.state.Load().cfg.Auth().UpstreamFile()}
	if detail != "" {
		args = append(args, "detail", detail)
	}
	p.s.log.Error("login to "+role+" failed: check the user and password in pool.upstream_auth_file and the "+
		"server's authentication setup; its requests fail with SERVER_ERROR", args...)
}

// authLogClear forgets a server's logged refusal after a successful handshake, so that a new one is logged.
func (p *pool) authLogClear(us *upServer) {
	authLogged.Delete(authLogKey{p: p, addr: us.addr, shadow: us.shadow})
}

// clientAuth is a client's login to the proxy (pool.client_auth_file).
type clientAuth struct {
	ok bool // logged in
	// saslStarted: a binary client sent SASL AUTH PLAIN without data; its SASL STEP carries them.
	saslStarted bool
}

// loginText runs memcached's ascii authentication for a text client that must log in and has not: its bytes are
// read as memcached -Y reads them, before any parsing. handled is false when this does not apply (no
// client_auth_file, logged in, or a binary client); else n bytes were consumed, 0 meaning more are needed.
func (cl *pclient) loginText(st *poolState, buf []byte, now int64) (n int, handled bool) {
	if cl.auth.ok {
		return 0, false
	}
	auth := st.cfg.Auth()
	if !auth.ClientAuth() {
		return 0, false
	}
	if p := cl.reqP.Protocol(); p == mcproto.ProtoBinary || (p == mcproto.ProtoUnknown && buf[0] == 0x80) {
		return 0, false
	}
	n, out, user, pass := parseASCIIAuth(buf)
	switch out {
	case asciiAuthIncomplete:
		return 0, true
	case asciiAuthClose:
		clientAuthDenied.Inc()
		cl.quitting = true
		return len(buf), true
	case asciiAuthLogin:
		if auth.CheckClient(user, pass) {
			clientAuthOK.Inc()
			cl.auth.ok = true
			cl.local([]byte("STORED\r\n"))
			// Written now, before a later request of this read is handed to the recorder's pairer, which would
			// otherwise take STORED for that request's answer.
			cl.flush(now)
		} else {
			clientAuthFailed.Inc()
			cl.local([]byte("CLIENT_ERROR authentication failure\r\n"))
		}
		return n, true
	}
	clientAuthDenied.Inc()
	cl.local([]byte(asciiAuthAnswers[out] + "\r\n"))
	return n, true
}

// asciiAuthOutcome is what memcached does with the bytes of a connection that has not logged in.
type asciiAuthOutcome uint8

const (
	asciiAuthIncomplete  asciiAuthOutcome = iota // wait for more bytes
	asciiAuthClose                               // close the connection without an answer
	asciiAuthLogin                               // a complete token: check user and password
	asciiAuthUnauth                              // CLIENT_ERROR unauthenticated
	asciiAuthTooLong                             // CLIENT_ERROR auth token too long
	asciiAuthTermination                         // CLIENT_ERROR bad command line termination
	asciiAuthFormat                              // CLIENT_ERROR bad authentication token format
)

var asciiAuthAnswers = [...]string{
	asciiAuthUnauth:      "CLIENT_ERROR unauthenticated",
	asciiAuthTooLong:     "CLIENT_ERROR auth token too long",
	asciiAuthTermination: "CLIENT_ERROR bad command line termination",
	asciiAuthFormat:      "CLIENT_ERROR bad authentication token format",
}

// memcached 1.6.45 proto_text.c limits.
const (
	asciiAuthMaxToken  = 16384 // MAX_AUTH_REQ_LEN
	asciiAuthMinLine   = 6     // MIN_AUTH_REQ_LEN
	asciiAuthMaxNoLine = 2048  // a line without '\n' longer than this closes the connection
	mcmcMaxLine        = 65534 // mcmc's TOKENIZER_MAXLEN
	mcmcMaxU32Digits   = 11    // mcmc's MCMC_TOKTO32_MAX
)

// parseASCIIAuth reads buf as memcached 1.6.45's try_read_command_asciiauth reads an unauthenticated
// connection: a line "set <key> <flags> <exptime> <bytes>" (only the "set" prefix and the fifth token matter)
// followed by <bytes> bytes "<user> <password>" and "\r\n". n is the bytes consumed; user and pass are
// sub-slices of buf. One difference: memcached keeps one answer per read and so loses all but the last error
// of a pipelined batch; the proxy answers each request.
func parseASCIIAuth(buf []byte) (n int, out asciiAuthOutcome, user, pass []byte) {
	if len(buf) < 3 {
		return 0, asciiAuthIncomplete, nil, nil
	}
	el := bytes.IndexByte(buf, '\n')
	if el < 0 {
		if len(buf) > asciiAuthMaxNoLine {
			return len(buf), asciiAuthClose, nil, nil
		}
		return 0, asciiAuthIncomplete, nil, nil
	}
	if el < asciiAuthMinLine {
		return len(buf), asciiAuthClose, nil, nil
	}
	lineEnd := el + 1
	size, ok := asciiAuthSize(buf[:el])
	if !ok {
		return lineEnd, asciiAuthUnauth, nil, nil
	}
	if size > asciiAuthMaxToken {
		return lineEnd, asciiAuthTooLong, nil, nil
	}
	need := int(size) + 2
	if len(buf)-lineEnd < need {
		return 0, asciiAuthIncomplete, nil, nil
	}
	data := buf[lineEnd : lineEnd+need]
	n = lineEnd + need
	if data[need-2] != '\r' || data[need-1] != '\n' {
		return n, asciiAuthTermination, nil, nil
	}
	mid := bytes.IndexByte(data, ' ')
	if mid < 0 {
		return n, asciiAuthFormat, nil, nil
	}
	return n, asciiAuthLogin, data[:mid], data[mid+1 : need-2]
}

// asciiAuthSize tokenizes a command line (without its '\n') as memcached's mcmc_tokenize does and returns the
// fifth token as a uint32, or false when the line does not start with "set", has fewer than five tokens, or
// that token is not a number. mcmc drops the line's last byte when it is not preceded by '\r' (a line ended by a
// bare "\n" loses its last character), and splits on spaces only.
func asciiAuthSize(line []byte) (uint32, bool) {
	if len(line) > mcmcMaxLine {
		line = line[:mcmcMaxLine]
	}
	if !bytes.HasPrefix(line, []byte("set")) {
		return 0, false
	}
	end := len(line) - 1
	if line[len(line)-2] == '\r' {
		end = len(line) - 2
	}
	line = line[:end]
	var tok []byte
	count := 0
	for i := 0; i < len(line) && count < 5; {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' {
			i++
		}
		if i > start {
			tok = line[start:i]
			count++
		}
	}
	if count < 5 || len(tok) > mcmcMaxU32Digits {
		return 0, false
	}
	var v uint64
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(v), true
}

// interceptBinary answers the binary requests that must not be routed: SASL requests (in every configuration),
// and, while a client that must log in has not, everything but VERSION (memcached -S answers "Auth failure." and
// closes the connection). They are never handed to the recorder. It reports whether r was answered.
func (cl *pclient) interceptBinary(st *poolState, r *mcproto.Request, frame []byte) bool {
	switch r.Cmd {
	case mcproto.CmdSASLList, mcproto.CmdSASLAuth, mcproto.CmdSASLStep:
		cl.sasl(st, r, frame)
		return true
	}
	if cl.auth.ok || r.Cmd == mcproto.CmdVersion || !st.cfg.Auth().ClientAuth() {
		return false
	}
	clientAuthDenied.Inc()
	cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, mcproto.BinStatusAuthError, "Auth failure."))
	cl.quitting = true
	return true
}

// sasl answers a SASL request as memcached -S does, checking PLAIN credentials against pool.client_auth_file;
// without that key, as memcached without SASL does ("unknown command").
func (cl *pclient) sasl(st *poolState, r *mcproto.Request, frame []byte) {
	auth := st.cfg.Auth()
	if !auth.ClientAuth() {
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, mcproto.BinStatusUnknownCommand,
			"Unknown command"))
		return
	}
	cl.auth.ok = false // memcached's init_sasl_conn: every SASL request starts over
	if r.Cmd == mcproto.CmdSASLList {
		cl.local(binAnswer(r.Opcode, r.Opaque, mcproto.BinStatusSuccess, "PLAIN"))
		return
	}
	if len(r.Keys) == 0 || len(r.Keys[0]) > binMaxSASLMech {
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, mcproto.BinStatusInvalid, "Invalid arguments"))
		return
	}
	data := frame[r.HeaderLen:]
	started := cl.auth.saslStarted
	cl.auth.saslStarted = false
	ok := false
	switch {
	case r.Cmd == mcproto.CmdSASLAuth && !strings.EqualFold(string(r.Keys[0]), "PLAIN"):
	case r.Cmd == mcproto.CmdSASLAuth && len(data) == 0:
		// PLAIN without an initial response: the server asks for it with an empty challenge.
		cl.auth.saslStarted = true
		cl.local(binAnswer(r.Opcode, r.Opaque, mcproto.BinStatusAuthContinue, ""))
		return
	case r.Cmd == mcproto.CmdSASLStep && !started:
	default:
		ok = checkPlain(auth.CheckClient, data)
	}
	if !ok {
		clientAuthFailed.Inc()
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, mcproto.BinStatusAuthError, "Auth failure."))
		return
	}
	clientAuthOK.Inc()
	cl.auth.ok = true
	cl.local(binAnswer(r.Opcode, r.Opaque, mcproto.BinStatusSuccess, "Authenticated"))
}

// checkPlain checks a SASL PLAIN message, "authzid NUL authcid NUL password" (RFC 4616); an authorization
// identity other than the user's own is refused, as Cyrus SASL refuses it without a proxy policy.
func checkPlain(check func(user, pass []byte) bool, msg []byte) bool {
	i := bytes.IndexByte(msg, 0)
	if i < 0 {
		return false
	}
	authzid, rest := msg[:i], msg[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return false
	}
	user, pass := rest[:j], rest[j+1:]
	if len(user) == 0 || bytes.IndexByte(pass, 0) >= 0 || (len(authzid) > 0 && !bytes.Equal(authzid, user)) {
		return false
	}
	return check(user, pass)
}
