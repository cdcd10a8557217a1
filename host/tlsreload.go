package host

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTLSPoll is how often the host checks its certificate and key
// files for a change (Config.TLSPoll).
const DefaultTLSPoll = 5 * time.Second

// certReloader serves the API's TLS certificate and loads it again when
// asked (SIGHUP, through Server.ReloadTLS) or when its files change
// (checkFiles, on a timer), so that a renewed certificate (certbot, ACM
// for Nitro Enclaves' sync, cert-manager writing to disk) is served
// without a restart and without dropping a connection.
//
// A pair that fails to load (a half-written file, a key that does not
// match the certificate, a renewal that wrote the certificate but not yet
// the key) is refused, and the previous pair stays in service: the host
// never ends up with no certificate, and says why in its log. Once the
// files change again the reloader tries again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu    sync.Mutex // serializes loads; guards seen
	seen  [2]os.FileInfo
	loads atomic.Uint64 // successful loads, the first included (tests)
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// getCertificate is tls.Config.GetCertificate: the pair in service.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// stat returns the files' current info (nil where a file cannot be read).
func (r *certReloader) stat() [2]os.FileInfo {
	var fi [2]os.FileInfo
	for i, name := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(name); err == nil {
			fi[i] = st
		}
	}
	return fi
}

// changed reports whether a file was replaced (a rename into place, a new
// inode), or written to (size or modification time), since seen.
func changed(seen, now os.FileInfo) bool {
	switch {
	case seen == nil || now == nil:
		return seen != now
	case !os.SameFile(seen, now):
		return true
	}
	return seen.Size() != now.Size() || !seen.ModTime().Equal(now.ModTime())
}

// load loads the pair and puts it in service, or returns why not and
// keeps the one in service.
func (r *certReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

func (r *certReloader) loadLocked() error {
	// The files' info from before reading them: a change made while they
	// are read is seen by the next check.
	r.seen = r.stat()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("host: loading the TLS certificate: %w", err)
	}
	if cert.Leaf == nil {
		return errors.New("host: loading the TLS certificate: no leaf certificate")
	}
	r.cur.Store(&cert)
	r.loads.Add(1)
	return nil
}

// reload loads the pair again (why says what asked: "SIGHUP", "files
// changed") and logs the outcome: the new certificate's subject, expiry
// and fingerprint, or why the previous one stays in service.
func (r *certReloader) reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(why)
}

func (r *certReloader) reloadLocked(why string) error {
	if err := r.loadLocked(); err != nil {
		r.log.Error("TLS certificate not reloaded: the previous one stays in service", "trigger", why, "cert", r.certFile, "key", r.keyFile, "err", err)
		return err
	}
	leaf := r.cur.Load().Leaf
	fp := sha256.Sum256(leaf.Raw)
	r.log.Info("TLS certificate reloaded", "trigger", why, "cert", r.certFile, "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", hex.EncodeToString(fp[:]))
	return nil
}

// checkFiles reloads the pair when either file changed since the last
// load (or load attempt).
func (r *certReloader) checkFiles() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.stat()
	if !changed(r.seen[0], now[0]) && !changed(r.seen[1], now[1]) {
		return
	}
	r.reloadLocked("files changed")
}

// watch calls checkFiles every poll until done is closed.
func (r *certReloader) watch(done <-chan struct{}, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.checkFiles()
		}
	}
}

// ErrNoTLS is ReloadTLS's answer for a server that serves plain HTTP.
var ErrNoTLS = errors.New("host: not serving TLS")

// ReloadTLS loads the TLS certificate and key files again and serves the
// new pair from the next handshake on; connections already open keep the
// pair they began with. If the new pair does not load, the previous one
// stays in service and the error says why (it is logged too).
// nitrosign-host calls it on SIGHUP.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return ErrNoTLS
	}
	return s.certs.reload("SIGHUP")
}
