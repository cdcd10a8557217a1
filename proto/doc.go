// Package proto is the protocol between nitrosign-host and nitrosign-enclave:
// length-prefixed frames carrying deterministic CBOR messages over one or more
// persistent connections (AF_VSOCK on Nitro, Unix sockets in the simulator),
// with a multiplexing [Client] and a concurrent [Serve].
//
// The host is untrusted: it may be fully compromised. Everything the enclave
// reads from a connection is therefore decoded strictly, with a size cap on
// every frame, string, byte string and list, and never panics. The same
// decoder runs on both sides. [Serve] also bounds what a peer can make it
// hold over time: open connections, requests in flight per connection, how
// long a connection may idle, and how long a frame may take to arrive (see
// [ServerOptions]).
//
// # Frames
//
// A frame is a 4-byte big-endian unsigned payload length n followed by n
// bytes of payload, with 1 <= n <= [MaxFrameSize] (1 MiB). A reader refuses
// any other length before reading the payload, and grows its buffer only as
// payload bytes actually arrive, so a peer that declares a large frame and
// then stalls does not make the reader allocate the declared size up front.
//
// # Envelope
//
// Each payload is one CBOR data item (RFC 8949), a map with exactly these four
// unsigned-integer keys, in this order:
//
//	1: version  unsigned integer, always 1 (Version)
//	2: type     unsigned integer, the message Type (see the table below)
//	3: id       unsigned integer in [1, 2^64-1], the request id; 0 is reserved
//	4: body     byte string holding the CBOR encoding of the message
//
// The request id is chosen by the caller and echoed in the response, so many
// requests can be in flight on one connection and be answered out of order.
// The body is wrapped in a byte string so that the envelope (and with it the
// id) can be read even when the body is malformed, which lets a server answer
// a bad request instead of dropping the connection.
//
// # Messages
//
// A message body is a CBOR map with unsigned-integer keys; every field listed
// is always present (the zero value is encoded, never omitted), and no other
// key is allowed. Text strings are UTF-8. Fixed-size fields are byte strings
// of exactly the given length.
//
//	type  message         key: field
//	1     Error           1: code text (1..64 bytes), 2: rule text (..128), 3: message text (..1024),
//	                      4: audit_record bytes (..64 KiB; omitted when empty)
//	2     HealthRequest   (empty map)
//	3     HealthResponse  1: version text (..128), 2: started_unix_ms int, 3: keys uint (32 bits),
//	                      4: policy_version uint, 5: audit_seq uint, 6: uptime_ms int,
//	                      7: state text (..32; omitted when empty)
//	4     KeysRequest     (empty map)
//	5     KeysResponse    1: array (..1024) of Key
//	      Key             1: id text (..128), 2: address bytes(20), 3: path text (..256)
//	6     SignRequest     1: body bytes (..512 KiB), 2: stamp text (..2048)
//	7     SignResponse    1: from bytes(20), 2: signature bytes(65), 3: signed_transaction bytes (..256 KiB),
//	                      4: transaction_hash bytes(32), 5: audit_seq uint, 6: digest bytes(32),
//	                      7: audit_record bytes (..64 KiB; omitted when empty),
//	                      8: status text, 9: approval_id text, (10: retired, was the summary text), 11: quorum uint,
//	                      12: approvers array of text, 13: expires_ms int, 14: already_counted bool,
//	                      15: approval_digest bytes(32), 16: summary_lines array (..200) of SummaryLine
//	                      (8 to 16 omitted when empty: set for a request pending approval)
//	      SummaryLine     1: key text, 2: value text, 3: labels array (..8) of SummaryLabel (omitted when empty);
//	                      the lines rendered as "key: value\n" text, labels in place, at most 64 KiB
//	      SummaryLabel    1: at uint, 2: end uint, 3: text: shown in place of bytes at..end of the value
//	                      (in order, not overlapping, on rune boundaries)
//	8     AttestRequest   1: nonce bytes (..512)
//	9     AttestResponse  1: document bytes (1..16 KiB), an NSM attestation document (COSE_Sign1)
//	10    AuditRequest    1: ack uint (persisted up to), 2: from uint (send records from; 0: none),
//	                      3: rotate bool (append a rotate record; omitted when false),
//	                      4: ack_hash bytes(32), 5: wait_ms uint (..5000), 6: failing text (..512),
//	                      7: run bytes(16) (4 to 7 omitted when empty or zero)
//	11    AuditResponse   1: key bytes (..64), 2: head_seq uint, 3: head_hash bytes(32),
//	                      4: array (..256) of record bytes (..64 KiB),
//	                      5: rotate_record bytes (..64 KiB), 6: run bytes(16), 7: acked uint
//	                      (5 to 7 omitted when empty or zero)
//	12    CredentialsRequest  1: access_key_id text (..4096), 2: secret_access_key text (..4096),
//	                          3: session_token text (..4096), 4: expires_unix_ms int
//	13    CredentialsResponse (empty map)
//	14    UnsealRequest   1: create bool, 2: sealed bytes (..16 KiB), 3: audit_head bytes (..64 KiB),
//	                      4: checkpoint bytes (..768 KiB)
//	15    UnsealResponse  1: sealed bytes (..16 KiB), 2: audit_key bytes (..64), 3: keys uint (32 bits),
//	                      4: audit_record bytes (..64 KiB)
//	16    CheckpointRequest   1: ack uint (generation stored)
//	17    CheckpointResponse  1: generation uint, 2: sealed bytes (..768 KiB; empty: nothing newer)
//	18    AdminRequest    1: envelope bytes (..768 KiB)
//	19    AdminResponse   1: result bytes (..768 KiB), 2: sealed bytes (..16 KiB; omitted when empty),
//	                      3: audit_record bytes (..64 KiB; omitted when empty)
//	20    ApprovalRequest 1: body bytes (..16 KiB): the JSON of POST /v1/approvals; answered by a SignResponse
//	21    ApprovalInfoRequest   1: id text (..64)
//	22    ApprovalInfoResponse  1: id, 2: status, 3: body bytes, 4: digest bytes(32), (5: retired, was the
//	                      summary text), 6: quorum uint, 7: approvers array, 8: expires_ms int, 9: audit_seq uint,
//	                      10: result SignResponse (omitted when none), 11: summary_lines array of SummaryLine
//	                      (omitted when empty)
//	23    PolicyRequest   (empty map)
//	24    PolicyResponse  1: document bytes, 2: version uint, 3: hash bytes(32), 4: time_lock_ms int,
//	                      5: array (..16) of PendingPolicy {1: document, 2: version, 3: hash, 4: effective_ms, 5: signers}
//
// Requests are answered with the matching response type or with an Error.
// This package answers with the codes refusal.CodeBadRequest and
// refusal.CodeInternal (package api/refusal defines every code); handlers
// use the others.
//
// # Canonical encoding only
//
// Both the envelope and the body must be in the core deterministic encoding
// of RFC 8949 section 4.2.1: shortest-form integers and lengths, definite
// lengths only, map keys sorted (for small unsigned keys: ascending), no
// duplicate keys, no tags, no trailing bytes. [Unmarshal] enforces this by
// decoding, re-encoding and requiring the result to be byte-for-byte equal to
// the input; for the frames of nearly every request (the envelope, a
// SignRequest, a signature's SignResponse, the audit poll's AuditRequest
// and AuditResponse) it instead reads the one canonical layout directly
// and leaves anything else to that check, and [Marshal] writes these
// messages directly (fastpath.go; fuzz tests hold both to the general
// path's answers). Each value therefore has exactly one encoding: two components
// that hash, sign or log a message see the same bytes, and an attacker
// cannot smuggle information, or trigger differences between parsers,
// through alternative encodings (null for an empty byte string, a 19-byte
// string for a 20-byte address, an integer in nine bytes, a missing field
// standing for zero). Beyond that, the decoder is configured to refuse
// indefinite lengths, tags, duplicate and unknown map keys, invalid UTF-8,
// and more nesting, array elements or map pairs than the messages need.
//
// # Evolution
//
// New messages get new type numbers; existing numbers and field keys never
// change meaning. A field added to an existing message must use omitempty,
// so that messages that do not use it keep their old encoding. An
// incompatible change bumps [Version]; the envelope keeps its four keys in
// every version.
package proto
