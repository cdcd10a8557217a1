// Package loadgen drives the signing API with many concurrent stamped
// clients and measures throughput and latency, and measures the crypto
// bound of the same machine for comparison. It backs `nitrosign bench`
// (`make bench`), `nitrosign load` and `nitrosign soak` (`make soak`). It is
// a benchmark, not a test: figures on a shared machine are only meaningful
// as ratios taken in the same run.
//
// # What the load generator costs
//
// Stamping a request (an Ed25519 signature over its body) is the client's
// cost, not the server's, but on a machine where the load generator shares
// the cores with the host and the enclave it takes cycles from them. With
// Options.PreStamp the requests of the measured run are stamped before it
// starts (they stay valid for the enclave's freshness window, five
// minutes), so the run measures the server side; Result says how many were
// stamped during the run instead, when the pre-stamped ones ran out. Every
// client keeps one keep-alive connection and a response buffer of its own
// for the whole run; against an http URL it speaks HTTP/1.1 on it directly
// (rawSender), which costs far fewer cycles than net/http's client.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// Options configures a load run.
type Options struct {
	// URL is the host API's base URL.
	URL string
	// Signer stamps the requests.
	Signer stamp.Signer
	// Key is the signing key id or address.
	Key string
	// Unsigned is the transaction every request asks to sign (each request
	// has its own request_id, so each body, and each stamp, is distinct).
	Unsigned []byte
	// Clients is the number of concurrent clients (default 64).
	Clients int
	// Warmup is how long the clients send before the measured run starts
	// (default 1 s); its answers count in Result.Sent and Result.Signed but
	// not in the figures.
	Warmup time.Duration
	// Duration of the measured run (default 10 s). Ignored when Requests
	// is set.
	Duration time.Duration
	// Requests, when positive, makes the run send exactly this many
	// requests after the warm-up, however long that takes.
	Requests int
	// PreStamp stamps the measured run's requests before it starts (see
	// the package doc). With Duration, their number is estimated from the
	// warm-up's rate; with Requests, it is Requests, at most MaxPreStamped.
	PreStamp bool
	// HTTPClient sends the requests; nil means a client with a keep-alive
	// connection per client (HTTPS with HTTP/2 when the URL is https).
	HTTPClient *http.Client
	// OnSigned, when set, is called with every signature received (warm-up
	// included), from the clients' goroutines, concurrently.
	OnSigned func(Signed)
}

// MaxPreStamped caps the requests stamped ahead of a run (about 600 bytes
// each).
const MaxPreStamped = 300_000

// Signed is one 200 answer: the audit record's sequence number the answer
// names and the SHA-256 of the exact body sent, which the audit record's
// request_digest must equal.
type Signed struct {
	Seq    uint64
	Digest [32]byte
}

// Result summarises a load run.
type Result struct {
	Clients int
	// Requests is the number of measured 200 answers (the warm-up's not
	// counted), Errors the measured requests that failed.
	Requests int
	Errors   int
	FirstErr error
	// Sent and Signed count every request and every 200 answer, the
	// warm-up's included: what the server handled.
	Sent, Signed int
	// PreStamped and LiveStamped say how the measured run's requests were
	// stamped: ahead of the run, or during it.
	PreStamped, LiveStamped int
	Elapsed                 time.Duration
	PerSecond               float64
	// Latencies of the measured 200 answers, from the sorted samples.
	P50, P99, P999, Max time.Duration
}

// request is a stamped request ready to send.
type request struct {
	body  []byte
	stamp string
}

// Run sends sign requests from opts.Clients goroutines: a warm-up, then the
// measured run.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Clients <= 0 {
		opts.Clients = 64
	}
	if opts.Warmup <= 0 {
		opts.Warmup = time.Second
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := &http.Transport{
			MaxIdleConns:        opts.Clients,
			MaxIdleConnsPerHost: opts.Clients,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   true,
		}
		hc = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	c, err := client.New(opts.URL, opts.Signer, &client.Options{HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	g := &gen{opts: opts, c: c, hc: hc, url: strings.TrimSuffix(opts.URL, "/") + "/v1/sign"}
	// Each client keeps its sender, and so its connection, for the whole
	// run.
	u, err := url.Parse(g.url)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	raw := opts.HTTPClient == nil && u.Scheme == "http"
	g.senders = make([]sender, opts.Clients)
	for i := range g.senders {
		if raw {
			g.senders[i] = &rawSender{addr: u.Host, path: u.RequestURI(), buf: make([]byte, 0, 4096)}
		} else {
			g.senders[i] = &httpSender{hc: hc, url: g.url, buf: make([]byte, 0, 4096)}
		}
	}
	defer func() {
		for _, s := range g.senders {
			s.close()
		}
	}()

	// One request first: fail early, with its error, if nothing works.
	first, err := g.stamp()
	if err != nil {
		return nil, err
	}
	if err := g.send(ctx, g.senders[0], first); err != nil {
		return nil, fmt.Errorf("loadgen: a first request failed: %w", err)
	}
	g.sent.Add(1)

	// The warm-up: live stamping, which also estimates the rate.
	warm := g.phase(ctx, time.Now().Add(opts.Warmup), 0, nil, false)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var pre []request
	if opts.PreStamp {
		n := opts.Requests
		if n <= 0 {
			// Twice the warm-up's rate: pre-stamped requests go faster
			// than live ones; the rest are stamped live.
			rate := float64(warm.ok) / opts.Warmup.Seconds()
			n = int(math.Ceil(2 * rate * opts.Duration.Seconds()))
		}
		n = min(n, MaxPreStamped)
		if pre, err = g.preStamp(ctx, n); err != nil {
			return nil, err
		}
	}
	var queue *preQueue
	if pre != nil {
		queue = &preQueue{reqs: pre}
	}
	start := time.Now()
	var m phaseResult
	if opts.Requests > 0 {
		m = g.phase(ctx, time.Time{}, opts.Requests, queue, true)
	} else {
		m = g.phase(ctx, start.Add(opts.Duration), 0, queue, true)
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &Result{
		Clients: opts.Clients, Requests: m.ok, Errors: m.errs, FirstErr: m.firstErr,
		Sent: int(g.sent.Load()), Signed: int(g.signed.Load()),
		LiveStamped: m.live, PreStamped: m.ok + m.errs - m.live, Elapsed: elapsed,
	}
	if opts.Requests <= 0 {
		r.Elapsed = opts.Duration // the clients stop starting requests then
	}
	if m.ok == 0 {
		if m.firstErr != nil {
			return r, fmt.Errorf("loadgen: no request succeeded: %w", m.firstErr)
		}
		return r, errors.New("loadgen: no request succeeded")
	}
	lat := m.lat
	slices.Sort(lat)
	r.PerSecond = float64(m.ok) / r.Elapsed.Seconds()
	r.P50, r.P99, r.P999 = Quantile(lat, 0.50), Quantile(lat, 0.99), Quantile(lat, 0.999)
	r.Max = lat[len(lat)-1]
	return r, nil
}

// Quantile returns the q-quantile (0 < q < 1) of sorted: the smallest
// sample that at least a fraction q of the samples do not exceed.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

type gen struct {
	opts    Options
	c       *client.Client
	hc      *http.Client
	url     string
	senders []sender // one per client
	sent    atomic.Int64
	signed  atomic.Int64
}

// preQueue hands out pre-stamped requests to the clients.
type preQueue struct {
	next atomic.Int64
	reqs []request
}

func (q *preQueue) take() (request, bool) {
	if q == nil {
		return request{}, false
	}
	i := q.next.Add(1) - 1
	if i >= int64(len(q.reqs)) {
		return request{}, false
	}
	r := q.reqs[i]
	q.reqs[i] = request{} // let the collector have it once sent
	return r, true
}

type phaseResult struct {
	ok, errs, live int
	firstErr       error
	lat            []time.Duration
}

// phase runs the clients until end (a zero end: until count requests were
// sent), taking requests from pre while it lasts and stamping the others.
func (g *gen) phase(ctx context.Context, end time.Time, count int, pre *preQueue, keep bool) phaseResult {
	var (
		mu     sync.Mutex
		out    phaseResult
		wg     sync.WaitGroup
		issued atomic.Int64
	)
	for _, snd := range g.senders {
		wg.Go(func() {
			var my phaseResult
			if keep {
				my.lat = make([]time.Duration, 0, 4096)
			}
			for ctx.Err() == nil {
				if count > 0 {
					if issued.Add(1) > int64(count) {
						break
					}
				} else if !time.Now().Before(end) {
					break
				}
				req, ok := pre.take()
				if !ok {
					var err error
					if req, err = g.stamp(); err != nil {
						my.errs++
						my.firstErr = cmpOr(my.firstErr, err)
						continue
					}
					my.live++
				}
				t0 := time.Now()
				err := g.send(ctx, snd, req)
				d := time.Since(t0)
				g.sent.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						my.errs++
						my.firstErr = cmpOr(my.firstErr, err)
					}
					continue
				}
				my.ok++
				if keep {
					my.lat = append(my.lat, d)
				}
			}
			mu.Lock()
			out.ok += my.ok
			out.errs += my.errs
			out.live += my.live
			out.firstErr = cmpOr(out.firstErr, my.firstErr)
			out.lat = append(out.lat, my.lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// stamp makes a fresh request as package client would send it.
func (g *gen) stamp() (request, error) {
	body, st, err := g.c.StampRequest(&api.SignRequest{Key: g.opts.Key, EthTransaction: api.NewEthTransaction(g.opts.Unsigned)})
	if err != nil {
		return request{}, err
	}
	return request{body: body, stamp: st}, nil
}

// preStamp stamps n requests on every core.
func (g *gen) preStamp(ctx context.Context, n int) ([]request, error) {
	out := make([]request, n)
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				r, err := g.stamp()
				if err != nil {
					errMu.Lock()
					first = cmpOr(first, err)
					errMu.Unlock()
					return
				}
				out[i] = r
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, ctx.Err()
}

// signAnswer is the part of a 200 answer the load generator checks.
type signAnswer struct {
	Signature string `json:"signature"`
	AuditSeq  uint64 `json:"audit_seq"`
}

// send posts req with snd and checks the answer: a 200 with a signature
// and an audit sequence number.
func (g *gen) send(ctx context.Context, snd sender, req request) error {
	status, data, err := snd.send(ctx, req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var er api.ErrorResponse
		if json.Unmarshal(data, &er) == nil && er.Error.Code != "" {
			return &client.APIError{Status: status, Code: er.Error.Code, Rule: er.Error.Rule, Message: er.Error.Message}
		}
		return fmt.Errorf("loadgen: HTTP %d", status)
	}
	var a signAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("loadgen: decoding the answer: %w", err)
	}
	if a.Signature == "" || a.AuditSeq == 0 {
		return errors.New("loadgen: a 200 answer without signature or audit_seq")
	}
	g.signed.Add(1)
	if g.opts.OnSigned != nil {
		g.opts.OnSigned(Signed{Seq: a.AuditSeq, Digest: sha256.Sum256(req.body)})
	}
	return nil
}

// A sender sends one client's requests, one at a time, and returns each
// answer's status and body (valid until its next send).
type sender interface {
	send(ctx context.Context, req request) (status int, body []byte, err error)
	close()
}

// maxAnswer caps an answer's body.
const maxAnswer = client.DefaultMaxResponseSize

// httpSender sends with net/http's client: HTTPS (HTTP/2 when the host
// offers it), or an Options.HTTPClient.
type httpSender struct {
	hc  *http.Client
	url string
	buf []byte
}

func (h *httpSender) send(ctx context.Context, req request) (int, []byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(req.body))
	if err != nil {
		return 0, nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set(stamp.Header, req.stamp)
	resp, err := h.hc.Do(hreq)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b := bytes.NewBuffer(h.buf[:0])
	if _, err := b.ReadFrom(io.LimitReader(resp.Body, maxAnswer)); err != nil {
		return 0, nil, fmt.Errorf("loadgen: reading the answer: %w", err)
	}
	h.buf = b.Bytes()
	return resp.StatusCode, h.buf, nil
}

func (h *httpSender) close() {}

// rawSender speaks HTTP/1.1 on one keep-alive TCP connection of its own,
// writing each request in one write and reading its answer with
// http.ReadResponse: the cost of a client is then little more than its
// system calls, without net/http's connection pool and the two goroutines
// it runs per connection, so that the load generator takes as few cycles
// as it can from the host and the enclave on the same cores. A connection
// that fails or that the host closes is redialled at the next request.
type rawSender struct {
	addr, path string
	conn       net.Conn
	br         *bufio.Reader
	stop       func() bool // closes conn when the run's context ends
	wbuf, buf  []byte
}

// rawTimeout bounds one exchange: far above any answer of a working host.
const rawTimeout = time.Minute

func (r *rawSender) send(ctx context.Context, req request) (int, []byte, error) {
	if r.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return 0, nil, fmt.Errorf("loadgen: %w", err)
		}
		r.conn, r.br = c, bufio.NewReaderSize(c, 16<<10)
		r.stop = context.AfterFunc(ctx, func() { c.Close() })
	}
	w := r.wbuf[:0]
	w = append(w, "POST "...)
	w = append(w, r.path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, r.addr...)
	w = append(w, "\r\nContent-Type: application/json\r\nAccept: application/json\r\n"...)
	w = append(w, stamp.Header...)
	w = append(w, ": "...)
	w = append(w, req.stamp...)
	w = append(w, "\r\nContent-Length: "...)
	w = strconv.AppendInt(w, int64(len(req.body)), 10)
	w = append(w, "\r\n\r\n"...)
	w = append(w, req.body...)
	r.wbuf = w
	r.conn.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := r.conn.Write(w); err != nil {
		r.close()
		return 0, nil, fmt.Errorf("loadgen: %w", err)
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.close()
		return 0, nil, fmt.Errorf("loadgen: reading the answer: %w", err)
	}
	b := bytes.NewBuffer(r.buf[:0])
	_, err = b.ReadFrom(io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if err != nil || resp.Close {
		r.close() // the host ends the connection, or it is in an unknown state
	}
	if err != nil {
		return 0, nil, fmt.Errorf("loadgen: reading the answer: %w", err)
	}
	r.buf = b.Bytes()
	return resp.StatusCode, r.buf, nil
}

func (r *rawSender) close() {
	if r.conn != nil {
		r.stop()
		r.conn.Close()
		r.conn, r.br = nil, nil
	}
}

// CryptoBound measures the crypto bound of the signing path on this
// machine: how many requests per second workers goroutines could answer if
// a request cost nothing but its two unavoidable signature operations, the
// Ed25519 verification of its stamp (over a body of a typical size) and
// the secp256k1 signature (ethtx.Sign: RFC 6979, low-S), measured over d.
func CryptoBound(d time.Duration, workers int) (float64, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		return 0, err
	}
	pub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	body := bytes.Repeat([]byte("x"), 320)
	sig := ed25519.Sign(edPriv, body)
	return rate(d, workers, func(h *[32]byte) {
		if !ed25519.Verify(pub, body, sig) {
			panic("loadgen: the crypto bound's signature does not verify")
		}
		ethtx.Sign(priv, *h)
	}), nil
}

// SignRate measures how many secp256k1 signatures (ethtx.Sign over random
// digests) workers goroutines make per second, over d.
func SignRate(d time.Duration, workers int) (float64, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		return 0, err
	}
	return rate(d, workers, func(h *[32]byte) { ethtx.Sign(priv, *h) }), nil
}

// rate runs op on workers goroutines for d and returns the operations per
// second. Each call gets a distinct digest.
func rate(d time.Duration, workers int, op func(*[32]byte)) float64 {
	var n atomic.Int64
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var h [32]byte
			h[0] = byte(w)
			for i := uint64(0); ; i++ {
				h[1], h[2], h[3], h[4] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				op(&h)
				if i%16 == 15 {
					n.Add(16)
					if !time.Now().Before(end) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
