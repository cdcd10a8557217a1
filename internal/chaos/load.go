// Package chaos injects faults into a running nitrosign stack (the
// production topology of `nitrosign dev`: a host that keeps running, an
// enclave process that is killed and restarted, a disk that fills up) and
// proves what must hold whatever happens: every signature a client received
// (an HTTP 200) has its exact audit record in the log the host persisted,
// and that log verifies, unforked, as `nitrosign audit verify` checks it.
//
// It has three parts: [Load] drives the signing API with concurrent
// stamped clients and keeps every answer with the exact body it answers;
// [Check] compares those answers with the persisted log; the tests run the
// faults (`make test` a short run, `make chaos` the long ones).
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// Answer is one sign request and what the host answered.
type Answer struct {
	// Body is the exact request body the client stamped and sent.
	Body []byte
	// Key is the signing key the request names.
	Key string
	// Status is the HTTP status (0 when no answer arrived: Err says why).
	Status int
	// Code and Message are the error code and message of a refusal.
	Code, Message string
	// Sign is the answer to a 200.
	Sign *api.SignResponse
	// Err is a transport error (the host did not answer) or an answer that
	// does not decode.
	Err error
}

// LoadOptions configures a Load.
type LoadOptions struct {
	// URL is the host API's base URL.
	URL string
	// Signer stamps the requests (a client the policy registers).
	Signer stamp.Signer
	// Key is the signing key id.
	Key string
	// To is the destination of the transfers, and ChainID their chain:
	// a transfer the policy allows.
	To      string
	ChainID uint64
	// Clients is the number of concurrent clients.
	Clients int
	// Pause is how long a client waits after an answer other than 200
	// before its next request, so that clients do not spin while the
	// enclave is down (default 50 ms).
	Pause time.Duration
	// Timeout bounds one request (default 40 s: longer than anything the
	// host may legitimately take, so a timeout means the host wedged).
	Timeout time.Duration
}

// Load is a running load: Clients goroutines, each sending one stamped
// sign request after another, each a transfer of a distinct amount.
type Load struct {
	opts   LoadOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup
	signed atomic.Int64
	total  atomic.Int64

	mu      sync.Mutex
	answers []Answer
}

// StartLoad starts the clients.
func StartLoad(ctx context.Context, opts LoadOptions) (*Load, error) {
	if opts.Clients <= 0 {
		return nil, fmt.Errorf("chaos: %d clients", opts.Clients)
	}
	if opts.Pause <= 0 {
		opts.Pause = 50 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 40 * time.Second
	}
	to, err := ethtx.ParseAddress(opts.To)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	hc := &http.Client{
		Timeout: opts.Timeout,
		Transport: &http.Transport{
			MaxIdleConns:        opts.Clients,
			MaxIdleConnsPerHost: opts.Clients,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := client.New(opts.URL, opts.Signer, &client.Options{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{opts: opts, cancel: cancel}
	var n atomic.Uint64
	for range opts.Clients {
		l.wg.Go(func() {
			defer hc.CloseIdleConnections()
			for ctx.Err() == nil {
				tx := &ethtx.Tx{
					Type: ethtx.TypeDynamicFee, ChainID: new(big.Int).SetUint64(opts.ChainID), Nonce: 7, GasLimit: 21000,
					MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9),
					To: &to, Value: new(big.Int).SetUint64(1e12 + n.Add(1)),
				}
				a := l.send(ctx, c, hc, tx.EncodeUnsigned())
				if ctx.Err() != nil && a.Status == 0 {
					return // stopped mid-request: no answer to judge
				}
				l.record(a)
				if a.Status != http.StatusOK {
					select {
					case <-ctx.Done():
					case <-time.After(opts.Pause):
					}
				}
			}
		})
	}
	return l, nil
}

// send stamps one request and posts it.
func (l *Load) send(ctx context.Context, c *client.Client, hc *http.Client, unsigned []byte) Answer {
	a := Answer{Key: l.opts.Key}
	body, st, err := c.StampRequest(&api.SignRequest{Key: l.opts.Key, EthTransaction: api.NewEthTransaction(unsigned)})
	if err != nil {
		a.Err = err
		return a
	}
	a.Body = body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(l.opts.URL, "/")+"/v1/sign", bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(stamp.Header, st)
	resp, err := hc.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		a.Err = fmt.Errorf("reading the answer: %w", err)
		return a
	}
	if resp.StatusCode == http.StatusOK {
		var sr api.SignResponse
		if err := json.Unmarshal(b, &sr); err != nil || sr.Signature == "" || sr.AuditSeq == 0 {
			a.Err = fmt.Errorf("a 200 answer without a signature and audit_seq: %s", b)
			return a
		}
		a.Sign = &sr
		return a
	}
	var er api.ErrorResponse
	if err := json.Unmarshal(b, &er); err != nil {
		a.Err = fmt.Errorf("a %d answer that is not an error: %s", resp.StatusCode, b)
		return a
	}
	a.Code, a.Message = er.Error.Code, er.Error.Message
	return a
}

func (l *Load) record(a Answer) {
	l.total.Add(1)
	if a.Status == http.StatusOK && a.Sign != nil {
		l.signed.Add(1)
	}
	l.mu.Lock()
	l.answers = append(l.answers, a)
	l.mu.Unlock()
}

// Signed returns how many 200 answers have arrived so far.
func (l *Load) Signed() int64 { return l.signed.Load() }

// Stop stops the clients, waits for them, and returns every answer. A
// request cut short by Stop is not among them.
func (l *Load) Stop() []Answer {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}

// Tally counts answers by outcome: "200", "503 enclave_unavailable", ...,
// and "no answer" for transport errors.
func Tally(answers []Answer) map[string]int {
	t := map[string]int{}
	for _, a := range answers {
		switch {
		case a.Err != nil:
			t["no answer or undecodable"]++
		case a.Status == http.StatusOK:
			t["200"]++
		default:
			t[fmt.Sprintf("%d %s", a.Status, a.Code)]++
		}
	}
	return t
}

// FormatTally renders a tally on one line, most frequent first.
func FormatTally(t map[string]int) string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t[keys[i]] != t[keys[j]] {
			return t[keys[i]] > t[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, t[k])
	}
	return b.String()
}
