// Package loadgen drives the signing API with many concurrent stamped
// clients and measures throughput and latency, and measures the raw
// secp256k1 signing rate of the same machine for comparison. It backs
// `nitrosign bench` (`make bench`). It is a benchmark, not a test: figures
// on a shared machine are only meaningful as ratios taken in the same run.
package loadgen

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

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
	// Unsigned is the transaction every request asks to sign.
	Unsigned []byte
	// Clients is the number of concurrent clients (default 64).
	Clients int
	// Duration of the measured run (default 10 s), after a 1 s warm-up.
	Duration time.Duration
}

// Result summarises a load run.
type Result struct {
	Clients   int
	Requests  int
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	PerSecond float64
	P50, P99  time.Duration
	Max       time.Duration
}

// Run sends sign requests from opts.Clients goroutines until the duration
// has passed.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Clients <= 0 {
		opts.Clients = 64
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        opts.Clients,
		MaxIdleConnsPerHost: opts.Clients,
		IdleConnTimeout:     30 * time.Second,
	}}
	defer hc.CloseIdleConnections()
	c, err := client.New(opts.URL, opts.Signer, &client.Options{HTTPClient: hc})
	if err != nil {
		return nil, err
	}

	// Warm up connections and caches; fail early if nothing works.
	if _, err := c.SignTransaction(ctx, opts.Key, opts.Unsigned); err != nil {
		return nil, fmt.Errorf("loadgen: a first request failed: %w", err)
	}
	warm := time.Now().Add(time.Second)
	end := warm.Add(opts.Duration)

	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     atomic.Int64
		firstErr error
		wg       sync.WaitGroup
	)
	for range opts.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				_, err := c.SignTransaction(ctx, opts.Key, opts.Unsigned)
				d := time.Since(t0)
				if t0.Before(warm) {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &Result{Clients: opts.Clients, Requests: len(all), Errors: int(errs.Load()), FirstErr: firstErr, Elapsed: opts.Duration}
	if len(all) == 0 {
		return r, errors.New("loadgen: no request succeeded")
	}
	slices.Sort(all)
	r.PerSecond = float64(len(all)) / opts.Duration.Seconds()
	r.P50 = all[len(all)*50/100]
	r.P99 = all[len(all)*99/100]
	r.Max = all[len(all)-1]
	return r, nil
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
	var n atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h [32]byte
			h[0] = byte(w)
			for i := uint64(0); ; i++ {
				h[1], h[2], h[3], h[4] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				ethtx.Sign(priv, h)
				if i%64 == 63 {
					n.Add(64)
					if !time.Now().Before(end) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds(), nil
}
