package host

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
)

// maxPooledBuffer is the largest buffer kept for reuse: request bodies
// are capped at api.MaxBodySize and answers are mostly far smaller; an
// unusually large answer (a page of audit records) is left to the
// collector rather than kept for every later request.
const maxPooledBuffer = 64 << 10

// buffers holds the buffers of request bodies and JSON answers between
// requests, so that a busy host does not allocate (and collect) one per
// request.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return buffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	buffers.Put(b)
}

// errBodyTooLarge is readBody's error for a body above api.MaxBodySize.
var errBodyTooLarge = errors.New("host: request body too large")

// readBody reads r's body, at most api.MaxBodySize bytes, into a pooled
// buffer; the caller returns it with putBuffer once done with the bytes.
// It reads straight into the buffer's free room (no io.LimitReader, which
// would be an allocation per request).
func readBody(r *http.Request) (*bytes.Buffer, error) {
	if r.ContentLength > api.MaxBodySize {
		return nil, errBodyTooLarge
	}
	b := getBuffer()
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength) + 1) // +1: room to see EOF
	}
	for {
		if b.Available() < bytes.MinRead {
			b.Grow(bytes.MinRead)
		}
		// Never more than one byte past the cap: that byte is enough to
		// know the body is too large.
		room := b.AvailableBuffer()[:min(b.Available(), api.MaxBodySize+1-b.Len())]
		n, err := r.Body.Read(room)
		b.Write(room[:n]) // in place: room is the buffer's own free space
		if b.Len() > api.MaxBodySize {
			putBuffer(b)
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			putBuffer(b)
			return nil, err
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := getBuffer()
	defer putBuffer(b)
	// Encode escapes as Marshal does, and ends the value with a newline.
	if err := json.NewEncoder(b).Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":{"code":"internal","message":"encoding the answer failed"}}` + "\n")
	}
	writeHeader(w, status)
	w.Write(b.Bytes())
}

// Header values of every JSON answer, shared rather than made per answer:
// net/http only reads them, and each has no room to grow, so that a later
// Header.Add appends to a copy.
var (
	contentTypeJSON = []string{"application/json"}
	cacheNoStore    = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// appendSignAnswer appends to b the JSON of signJSON(sr), the answer to a
// signed request, byte for byte as writeJSON encodes it (a test holds it
// to that), without the reflection and the intermediate strings: it is
// the answer of every signature. Every value is hexadecimal or a number,
// so nothing needs escaping.
func appendSignAnswer(b []byte, sr *proto.SignResponse) []byte {
	b = append(b, `{"from":"`...)
	b = append(b, addressHex(ethtx.Address(sr.From))...)
	b = append(b, `","signature":"0x`...)
	b = hex.AppendEncode(b, sr.Signature[:])
	b = append(b, '"')
	// Messages have no transaction: the enclave leaves those fields empty.
	if len(sr.SignedTransaction) > 0 {
		b = append(b, `,"signed_transaction":"0x`...)
		b = hex.AppendEncode(b, sr.SignedTransaction)
		b = append(b, `","transaction_hash":"0x`...)
		b = hex.AppendEncode(b, sr.TransactionHash[:])
		b = append(b, '"')
	}
	b = append(b, `,"digest":"0x`...)
	b = hex.AppendEncode(b, sr.Digest[:])
	b = append(b, `","audit_seq":`...)
	b = strconv.AppendUint(b, sr.AuditSeq, 10)
	return append(b, "}\n"...)
}

// writeSignAnswer answers 200 with the signature sr.
func writeSignAnswer(w http.ResponseWriter, sr *proto.SignResponse) {
	b := getBuffer()
	defer putBuffer(b)
	b.Write(appendSignAnswer(b.AvailableBuffer(), sr))
	writeHeader(w, http.StatusOK)
	w.Write(b.Bytes())
}

// writeHeader sets the headers of a JSON answer and writes the status.
func writeHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheNoStore
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
}

// addressHexes caches the checksummed hex of the addresses the host has
// answered for (a keccak hash each), so that a signature answer does not
// hash its key's address again: a host signs with few keys. The cache
// holds at most maxAddressHexes entries; past that, addresses are hashed
// every time, which is only slower.
var (
	addressHexes   sync.Map // ethtx.Address → string
	addressHexSize atomic.Int64
)

const maxAddressHexes = 1024

// addressHex returns a.Hex(), from the cache when it can.
func addressHex(a ethtx.Address) string {
	if h, ok := addressHexes.Load(a); ok {
		return h.(string)
	}
	h := a.Hex()
	if addressHexSize.Load() < maxAddressHexes {
		if _, loaded := addressHexes.LoadOrStore(a, h); !loaded {
			addressHexSize.Add(1)
		}
	}
	return h
}
