package host_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// testCA issues server certificates that differ by serial number.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: "nitrosign test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a server certificate for 127.0.0.1 with this serial, and
// its key, in PEM.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "nitrosign-host"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeAtomic writes b to a temporary file and renames it onto path, as
// certbot and most deploy tools do.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSReload: a client's new connection sees the certificate that was
// put in place, after a rename into place (the file check) and after
// SIGHUP (ReloadTLS); a pair that does not load leaves the previous one in
// service, and says why in the log.
func TestTLSReload(t *testing.T) {
	sim := newSim(t)
	startFake(t, sim, func(proto.Message) proto.Message {
		return &proto.KeysResponse{Keys: []proto.Key{{ID: "hot-0", Path: "m/0"}}}
	})
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.issue(t, 1)
	os.WriteFile(certFile, c1, 0o600)
	os.WriteFile(keyFile, k1, 0o600)
	var logs lockedBuffer
	s, err := host.New(&host.Config{
		Transport: sim.Endpoint(transport.ParentCID), TLSCertFile: certFile, TLSKeyFile: keyFile,
		TLSPoll: -1, // the test runs the file check itself
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	// served returns the serial number of the certificate a new
	// connection gets.
	served := func(t *testing.T) int64 {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + l.Addr().String() + "/v1/keys")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	check := func(t *testing.T, want int64) {
		t.Helper()
		if got := served(t); got != want {
			t.Fatalf("served certificate %d, want %d", got, want)
		}
	}
	check(t, 1)
	// A key that matches another certificate.
	_, kOther := ca.issue(t, 99)
	c2, k2 := ca.issue(t, 2)
	c3, k3 := ca.issue(t, 3)
	c4, k4 := ca.issue(t, 4)

	for _, tc := range []struct {
		name string
		// change puts files in place and triggers (or not) a reload.
		change func(t *testing.T)
		want   int64
		log    string // a log line's message, "" for none
	}{
		{"nothing changed: no reload", func(t *testing.T) { host.CheckTLSFiles(s) }, 1, ""},
		{"rename into place", func(t *testing.T) {
			writeAtomic(t, keyFile, k2)
			writeAtomic(t, certFile, c2)
			host.CheckTLSFiles(s)
		}, 2, "TLS certificate reloaded"},
		{"files rewritten, no SIGHUP and no check yet: old pair", func(t *testing.T) {
			os.WriteFile(certFile, c3, 0o600)
			os.WriteFile(keyFile, k3, 0o600)
		}, 2, ""},
		{"SIGHUP", func(t *testing.T) {
			if err := s.ReloadTLS(); err != nil {
				t.Fatal(err)
			}
		}, 3, "TLS certificate reloaded"},
		{"certificate renewed, key not yet: old pair kept", func(t *testing.T) {
			writeAtomic(t, certFile, c4)
			host.CheckTLSFiles(s)
		}, 3, "TLS certificate not reloaded: the previous one stays in service"},
		{"then the key: new pair", func(t *testing.T) {
			writeAtomic(t, keyFile, k4)
			host.CheckTLSFiles(s)
		}, 4, "TLS certificate reloaded"},
		{"mismatched key on SIGHUP: old pair kept", func(t *testing.T) {
			writeAtomic(t, keyFile, kOther)
			if err := s.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "host: loading the TLS certificate") {
				t.Fatalf("ReloadTLS = %v, want the load error", err)
			}
		}, 4, "TLS certificate not reloaded: the previous one stays in service"},
		{"key file removed: old pair kept", func(t *testing.T) {
			os.Remove(keyFile)
			host.CheckTLSFiles(s)
		}, 4, "TLS certificate not reloaded: the previous one stays in service"},
		{"the failed pair is not retried until a file changes", func(t *testing.T) { host.CheckTLSFiles(s) }, 4, ""},
		{"key back", func(t *testing.T) {
			writeAtomic(t, keyFile, k4)
			host.CheckTLSFiles(s)
		}, 4, "TLS certificate reloaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.String())
			tc.change(t)
			check(t, tc.want)
			got := logs.String()[before:]
			if tc.log == "" {
				if strings.Contains(got, "TLS certificate") {
					t.Fatalf("unexpected log: %s", got)
				}
				return
			}
			if !strings.Contains(got, `"msg":"`+tc.log+`"`) {
				t.Fatalf("log %q, want a line %q", got, tc.log)
			}
			if strings.Contains(got, "PRIVATE KEY") {
				t.Fatalf("the log shows key material: %s", got)
			}
		})
	}
}

func TestReloadTLSWithoutTLS(t *testing.T) {
	s, err := host.New(&host.Config{Transport: newSim(t).Endpoint(transport.ParentCID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadTLS(); !errors.Is(err, host.ErrNoTLS) {
		t.Fatalf("ReloadTLS on plain HTTP = %v, want ErrNoTLS", err)
	}
}
