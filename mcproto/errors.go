// Errors returned by the parsers: "incomplete" and protocol errors that carry memcached's own wire text.
package mcproto

import "errors"

// ErrIncomplete means the buffer does not yet hold a whole frame: call again with more bytes. When a request's
// or response's header has been parsed, its FrameLen is already set, so a caller may pass the bytes it holds on
// and stream the rest (see Request.FrameLen).
var ErrIncomplete = errors.New("mcproto: incomplete frame")

// ProtocolError is a request or response memcached would reject. Text is the exact line memcached 1.6 sends
// back (without "\r\n"); empty when memcached sends nothing. Close reports that memcached closes the connection
// after it, so the caller must too; otherwise the connection goes on after the frame the parser consumed.
type ProtocolError struct {
	Text  string
	Close bool
	// BinStatus is the binary protocol status memcached answers with (0 for text and meta).
	BinStatus uint16
}

func (e *ProtocolError) Error() string {
	if e.Text == "" {
		return "mcproto: protocol error (connection closed without reply)"
	}
	return "mcproto: " + e.Text
}

// The protocol errors, shared so that returning one never allocates.
var (
	// ErrLineTooLong: a non-get command line longer than MaxLine without "\n". memcached 1.6 closes the
	// connection without a reply; membench answers with this text first so the client learns why.
	ErrLineTooLong = &ProtocolError{Text: "CLIENT_ERROR line too long", Close: true}
	// ErrBadFormat: a malformed command line (bad number, key over 250 bytes, negative length).
	ErrBadFormat = &ProtocolError{Text: "CLIENT_ERROR bad command line format"}
	// ErrBadDataChunk: the data block of a storage command did not end with "\r\n".
	ErrBadDataChunk = &ProtocolError{Text: "CLIENT_ERROR bad data chunk"}
	// ErrTooLarge: a value over the item size limit; its data block is consumed ("swallowed").
	ErrTooLarge = &ProtocolError{Text: "SERVER_ERROR object too large for cache"}
	// ErrUnknownCommand: memcached's reply to a command it does not know or with the wrong number of tokens.
	ErrUnknownCommand = &ProtocolError{Text: "ERROR"}
	// ErrBadMagic: a binary connection received a byte other than 0x80 where a header starts; memcached
	// closes the connection without a reply.
	ErrBadMagic = &ProtocolError{Close: true}
	// ErrBinaryInvalid: a binary header whose lengths are inconsistent or whose key is over 250 bytes; memcached
	// answers with status 0x0004 (invalid arguments) and closes.
	ErrBinaryInvalid = &ProtocolError{Close: true, BinStatus: BinStatusInvalid}
	// ErrBinaryBodyTooLong: key and extras longer than the body; memcached answers 0x0081 and closes.
	ErrBinaryBodyTooLong = &ProtocolError{Close: true, BinStatus: BinStatusUnknownCommand}
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
