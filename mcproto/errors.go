// Errors returned by the parsers: "incomplete" and protocol errors that carry memcached's own wire text.
package mcproto

import "errors"

// ErrIncomplete means the buffer does not yet hold a whole frame: call again with more bytes. When a request's
// or response's header has been parsed, its FrameLen is already set, so a caller may pass the bytes it holds on
// and stream the rest (see Request.FrameLen).
var ErrIncomplete = errors.New("mcproto: incomplete frame")

// ProtocolError is a request or response memcached would reject. Text is the exact line memcached sends back
// to a text or meta request (without its final "\r\n"); empty when memcached sends nothing. Close reports that
// memcached closes the connection after it, so the caller must too; otherwise the connection goes on after the
// frame the parser consumed. AppendReply writes the exact answer.
type ProtocolError struct {
	Text  string
	Close bool
	// BinStatus is the binary protocol status memcached answers with (0 for text and meta, and for a binary
	// error memcached answers with nothing); BinText is the body of that answer.
	BinStatus uint16
	BinText   string
	// Reason says what was wrong when Text does not (for logs and Error only, never sent).
	Reason string
}

func (e *ProtocolError) Error() string {
	switch {
	case e.Text != "":
		return "mcproto: " + e.Text
	case e.BinText != "":
		return "mcproto: binary " + e.BinText
	case e.Reason != "":
		return "mcproto: " + e.Reason + " (connection closed without reply)"
	}
	return "mcproto: protocol error (connection closed without reply)"
}

// AppendReply appends to dst the bytes memcached answers r with when it rejects r with e: for binary
// requests a response header echoing r's opcode and opaque with BinStatus and BinText (nothing when BinStatus
// is 0); for text and meta Text and "\r\n", or nothing when Text is empty or r carries noreply (memcached
// honours noreply for these errors: the parser clears r.Noreply where memcached answers anyway).
func (e *ProtocolError) AppendReply(dst []byte, r *Request) []byte {
	if r.Proto == ProtoBinary {
		if e.BinStatus == 0 {
			return dst
		}
		return AppendBinaryError(dst, r.Opcode, r.Opaque, e.BinStatus, e.BinText)
	}
	if e.Text == "" || r.Noreply {
		return dst
	}
	dst = append(dst, e.Text...)
	return append(dst, '\r', '\n')
}

// The protocol errors, shared so that returning one never allocates.
var (
	// ErrLineTooLong: a non-get command line longer than MaxLine without "\n". memcached (1.6.18 as 1.6.45)
	// closes the connection without a reply, and so must a proxy that wants to be taken for memcached.
	ErrLineTooLong = &ProtocolError{Close: true, Reason: "command line too long"}
	// ErrBadFormat: a malformed command line (bad number, key over 250 bytes, negative length).
	ErrBadFormat = &ProtocolError{Text: "CLIENT_ERROR bad command line format"}
	// ErrBadDataChunk: the data block of a storage command did not end with "\r\n".
	ErrBadDataChunk = &ProtocolError{Text: "CLIENT_ERROR bad data chunk"}
	// ErrTooLarge: a value over RequestParser.MaxValue; its data block is consumed ("swallowed"). memcached
	// answers this after it has also unlinked the key's old item for a set (text, meta ms in set mode, binary
	// set): a proxy that answers it on memcached's behalf leaves the old value readable where memcached would
	// not, and memcached's own limit is on the whole item, a little below item_size_max for the value.
	ErrTooLarge = &ProtocolError{Text: "SERVER_ERROR object too large for cache"}
	// ErrUnknownCommand: memcached's reply to a command it does not know or with the wrong number of tokens.
	ErrUnknownCommand = &ProtocolError{Text: "ERROR"}
	// ErrBadMagic: a binary connection received a 24-byte header whose first byte is not 0x80; memcached
	// closes the connection without a reply.
	ErrBadMagic = &ProtocolError{Close: true, Reason: "bad binary magic"}
	// ErrBinaryInvalid: a binary header whose lengths are inconsistent or whose key is over 250 bytes; memcached
	// answers with status 0x0004 and body "Invalid arguments", and closes.
	ErrBinaryInvalid = &ProtocolError{Close: true, BinStatus: BinStatusInvalid, BinText: "Invalid arguments"}
	// ErrBinaryBodyTooLong: key and extras longer than the body; memcached answers 0x0081 with body "Unknown
	// command" and closes.
	ErrBinaryBodyTooLong = &ProtocolError{Close: true, BinStatus: BinStatusUnknownCommand, BinText: "Unknown command"}
	// ErrBadResponse: a response memcached would never send (used by the response parser).
	ErrBadResponse = &ProtocolError{Text: "SERVER_ERROR bad response from upstream", Close: true}
	// Meta command errors.
	ErrMetaDuplicateFlag = &ProtocolError{Text: "CLIENT_ERROR duplicate flag"}
	ErrMetaInvalidFlag   = &ProtocolError{Text: "CLIENT_ERROR invalid flag"}
	ErrMetaBadToken      = &ProtocolError{Text: "CLIENT_ERROR bad token in command line format"}
	ErrMetaKeyDecode     = &ProtocolError{Text: "CLIENT_ERROR error decoding key"}
	ErrMetaFlagsTooLong  = &ProtocolError{Text: "CLIENT_ERROR options flags are too long"}
	ErrMetaOpaqueTooLong = &ProtocolError{Text: "CLIENT_ERROR opaque token too long"}
	ErrMetaBadMLength    = &ProtocolError{Text: "CLIENT_ERROR incorrect length for M token"}
)
