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
// client reuses one keep-alive connection and a response buffer of its
// own.
package loadgen

import (
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
	"net/http"
	"runtime"
	"slices"
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

	// One request first: fail early, with its error, if nothing works.
	first, err := g.stamp()
	if err != nil {
		return nil, err
	}
	if err := g.send(ctx, first, make([]byte, 0, 4096)); err != nil {
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
	opts   Options
	c      *client.Client
	hc     *http.Client
	url    string
	sent   atomic.Int64
	signed atomic.Int64
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
	for range g.opts.Clients {
		wg.Go(func() {
			var my phaseResult
			if keep {
				my.lat = make([]time.Duration, 0, 4096)
			}
			buf := make([]byte, 0, 4096)
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
				err := g.send(ctx, req, buf)
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

// send posts req and checks the answer: a 200 with a signature and an
// audit sequence number. buf is the client's response buffer.
func (g *gen) send(ctx context.Context, req request, buf []byte) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(req.body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set(stamp.Header, req.stamp)
	resp, err := g.hc.Do(hreq)
	if err != nil {
		return err
	}
	b := bytes.NewBuffer(buf[:0])
	_, err = b.ReadFrom(io.LimitReader(resp.Body, client.DefaultMaxResponseSize))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("loadgen: reading the answer: %w", err)
	}
	data := b.Bytes()
	if resp.StatusCode != http.StatusOK {
		var er api.ErrorResponse
		if json.Unmarshal(data, &er) == nil && er.Error.Code != "" {
			return &client.APIError{Status: resp.StatusCode, Code: er.Error.Code, Rule: er.Error.Rule, Message: er.Error.Message}
		}
		return fmt.Errorf("loadgen: HTTP %d", resp.StatusCode)
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
