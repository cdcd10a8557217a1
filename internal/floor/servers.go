package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// A frame is a 4-byte big-endian length, then an 8-byte id, then the
// payload: the same framing as package proto, without its codec. A request's
// payload is the stamp's length (2 bytes), the stamp and the body; an
// answer's is the 65-byte signature and the audit sequence number (8 bytes),
// or nothing for a refusal. An audit batch (enclave to host) is its records;
// its acknowledgement (host to enclave) is an empty payload with the batch's
// id.

const maxFrame = 1 << 20

func readFrame(br *bufio.Reader, buf []byte) (uint64, []byte, error) {
	var h [12]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < 8 || n > maxFrame {
		return 0, nil, fmt.Errorf("floor: frame of %d bytes", n)
	}
	if cap(buf) < int(n-8) {
		buf = make([]byte, n-8)
	}
	buf = buf[:n-8]
	_, err := io.ReadFull(br, buf)
	return binary.BigEndian.Uint64(h[4:]), buf, err
}

func appendFrame(b []byte, id uint64, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint64(b, id)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// writeLoop writes the frames queued on out through one buffer and flushes
// whenever the queue is empty, so that concurrent answers share system calls
// (proto.Client and the enclave's connServer do the same).
func writeLoop(w io.Writer, out <-chan []byte) {
	bw := bufio.NewWriterSize(w, 64<<10)
	for f := range out {
		bw.Write(f)
	drain:
		for {
			select {
			case f := <-out:
				bw.Write(f)
			default:
				break drain
			}
		}
		if bw.Flush() != nil {
			return
		}
	}
}

// --- the enclave ---

type job struct {
	id   uint64
	body []byte // the request payload
	out  chan<- []byte
}

type pending struct {
	frame []byte
	out   chan<- []byte
}

// runEnclave answers each request frame with one Ed25519 verification of
// its stamp over its body and one ethtx.Sign: the crypto bound's work. With
// audit, each answer waits until the host has acknowledged its record as
// written and synced, as the real enclave's does.
func runEnclave(sock string, audit bool, workers, recordSize int) error {
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		return err
	}
	if workers == 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	jobs := make(chan job, 1024)
	var records chan pending
	if audit {
		records = make(chan pending, 4096)
		al, err := net.Listen("unix", sock+".audit")
		if err != nil {
			return err
		}
		go func() {
			c, err := al.Accept()
			if err != nil {
				return
			}
			auditLoop(c, records, recordSize)
		}()
	}
	var seq atomic.Uint64
	do := func(j job) {
		sig, ok := verifyAndSign(priv, j.body)
		if !ok {
			j.out <- appendFrame(nil, j.id)
			return
		}
		s := seq.Add(1)
		f := appendFrame(make([]byte, 0, 12+73), j.id, sig[:], binary.BigEndian.AppendUint64(nil, s))
		if records == nil {
			j.out <- f
		} else {
			records <- pending{frame: f, out: j.out}
		}
	}
	// By default a fixed pool of workers, and not a goroutine per request
	// (workers < 0, as proto's connServer does): a new goroutine's stack
	// grows, and is copied, during the crypto each time.
	if workers < 0 {
		go func() {
			for j := range jobs {
				go do(j)
			}
		}()
	}
	for range workers {
		go func() {
			for j := range jobs {
				do(j)
			}
		}()
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			out := make(chan []byte, 1024)
			go writeLoop(c, out)
			br := bufio.NewReaderSize(c, 64<<10)
			for {
				id, p, err := readFrame(br, nil)
				if err != nil {
					c.Close()
					return
				}
				jobs <- job{id: id, body: p, out: out}
			}
		}()
	}
}

// verifyAndSign checks the request's stamp (scheme ed25519 assumed: the
// floor needs no general parser) and signs SHA-256 of its body.
func verifyAndSign(priv *secp256k1.PrivateKey, p []byte) (ethtx.Signature, bool) {
	if len(p) < 2 || len(p) < 2+int(binary.BigEndian.Uint16(p)) {
		return ethtx.Signature{}, false
	}
	n := int(binary.BigEndian.Uint16(p))
	st, body := p[2:2+n], p[2+n:]
	if n > stamp.MaxHeaderSize {
		return ethtx.Signature{}, false
	}
	var js [stamp.MaxHeaderSize]byte
	m, err := base64.RawURLEncoding.Decode(js[:], st)
	if err != nil {
		return ethtx.Signature{}, false
	}
	pub, ok1 := hexField(js[:m], `"public_key":"`, ed25519.PublicKeySize)
	sig, ok2 := hexField(js[:m], `"signature":"`, ed25519.SignatureSize)
	if !ok1 || !ok2 || !ed25519.Verify(pub, body, sig) {
		return ethtx.Signature{}, false
	}
	return ethtx.Sign(priv, sha256.Sum256(body)), true
}

func hexField(js []byte, key string, size int) ([]byte, bool) {
	i := bytes.Index(js, []byte(key))
	if i < 0 || len(js) < i+len(key)+2*size {
		return nil, false
	}
	out := make([]byte, size)
	_, err := hex.Decode(out, js[i+len(key):i+len(key)+2*size])
	return out, err == nil
}

// auditLoop closes a batch once it holds 32 records or its first has waited
// 1 ms (taking then every record already queued, at most 255, like the real
// enclave), sends it to the host, waits for its acknowledgement and only then
// releases the batch's answers. One batch is in flight at a time.
func auditLoop(c net.Conn, records <-chan pending, recordSize int) {
	br := bufio.NewReader(c)
	var (
		batch []pending
		buf   []byte
		rec   = make([]byte, recordSize)
		id    uint64
	)
	for first := range records {
		batch = append(batch[:0], first)
		due := time.NewTimer(time.Millisecond)
	collect:
		for len(batch) < 32 {
			select {
			case p := <-records:
				batch = append(batch, p)
			case <-due.C:
				break collect
			}
		}
		due.Stop()
	more:
		for len(batch) < 255 {
			select {
			case p := <-records:
				batch = append(batch, p)
			default:
				break more
			}
		}
		id++
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(8+len(batch)*recordSize))
		buf = binary.BigEndian.AppendUint64(buf, id)
		for _, p := range batch {
			// A record names the answer's frame (its id, signature and
			// sequence number); the rest stands for the real record's
			// fields (about 580 bytes a line).
			copy(rec, p.frame)
			buf = append(buf, rec...)
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
		if ack, _, err := readFrame(br, nil); err != nil || ack != id {
			return
		}
		for _, p := range batch {
			p.out <- p.frame
		}
	}
}

// --- the host ---

// hostConn is one multiplexed connection to the enclave, like proto.Client:
// a writer goroutine and a reader goroutine matching answers to calls by id.
type hostConn struct {
	out     chan []byte
	mu      sync.Mutex
	pending map[uint64]chan []byte
	lastID  atomic.Uint64
}

func dialEnclave(sock string) (*hostConn, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	h := &hostConn{out: make(chan []byte, 256), pending: make(map[uint64]chan []byte)}
	go writeLoop(c, h.out)
	go func() {
		br := bufio.NewReaderSize(c, 64<<10)
		for {
			id, p, err := readFrame(br, nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor host: enclave connection:", err)
				os.Exit(1)
			}
			h.mu.Lock()
			ch := h.pending[id]
			delete(h.pending, id)
			h.mu.Unlock()
			ch <- p
		}
	}()
	return h, nil
}

func (h *hostConn) call(st string, body []byte) []byte {
	id := h.lastID.Add(1)
	ch := make(chan []byte, 1)
	h.mu.Lock()
	h.pending[id] = ch
	h.mu.Unlock()
	h.out <- appendFrame(make([]byte, 0, 14+len(st)+len(body)), id, binary.BigEndian.AppendUint16(nil, uint16(len(st))), []byte(st), body)
	return <-ch
}

// runHost serves POST /v1/sign with net/http on listen, forwarding each
// request to the enclave over conns connections; with audit it also appends
// the enclave's batches to a file, one write and one fsync a batch, and
// acknowledges each after its fsync.
func runHost(listen, sock string, conns int, audit bool, dir string, recordSize int) error {
	pool := make([]*hostConn, conns)
	for i := range pool {
		var err error
		if pool[i], err = dialEnclave(sock); err != nil {
			return err
		}
	}
	if audit {
		if err := startAuditStore(sock+".audit", dir, recordSize); err != nil {
			return err
		}
	}
	var next atomic.Uint64
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(l.Addr().String())
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sign" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		st := r.Header.Get(stamp.Header)
		b := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(b)
		b.Reset()
		if _, err := b.ReadFrom(io.LimitReader(r.Body, 64<<10)); err != nil || len(st) > stamp.MaxHeaderSize {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ans := pool[next.Add(1)%uint64(conns)].call(st, b.Bytes())
		if len(ans) != 73 {
			http.Error(w, `{"error":{"code":"unauthenticated"}}`, http.StatusUnauthorized)
			return
		}
		out := make([]byte, 0, 192)
		out = append(out, `{"signature":"0x`...)
		out = hex.AppendEncode(out, ans[:65])
		out = append(out, `","audit_seq":`...)
		out = strconv.AppendUint(out, binary.BigEndian.Uint64(ans[65:]), 10)
		out = append(out, "}\n"...)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.Write(out)
	}))
}

func startAuditStore(sock, dir string, recordSize int) error {
	f, err := os.CreateTemp(dir, "floor-audit-")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // the file lives while it is open
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	var batches, records atomic.Int64
	// The driver stops the host with SIGTERM and reads the mean batch
	// size, which says how much each write and fsync is shared.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Printf("%d %d\n", batches.Load(), records.Load())
		os.Exit(0)
	}()
	go func() {
		br := bufio.NewReaderSize(c, 256<<10)
		var buf []byte
		for {
			id, p, err := readFrame(br, buf)
			if err == nil {
				_, err = f.Write(p)
			}
			if err == nil {
				err = f.Sync()
			}
			if err == nil {
				_, err = c.Write(appendFrame(nil, id))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor host: audit:", err)
				os.Exit(1)
			}
			batches.Add(1)
			records.Add(int64(len(p) / recordSize))
			buf = p
		}
	}()
	return nil
}
