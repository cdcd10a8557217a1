package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/buildinfo"
)

func TestRunRefusesBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		c    config
		msg  string
	}{
		{"unknown transport", config{transport: "tcp:1", level: "info", listen: "127.0.0.1:0"}, "unknown transport"},
		{"bad log level", config{transport: "vsock", level: "loud", listen: "127.0.0.1:0"}, "level"},
		{"certificate without key", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", cert: "x.pem"}, "TLS"},
		{"unknown credentials", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", credentials: "env"}, "want imds or none"},
		{"bad IMDS endpoint", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", credentials: "imds", imds: "https://169.254.169.254"}, "http"},
		{"port in use", config{transport: "unix:/tmp/x", level: "info", listen: busy.Addr().String()}, "address already in use"},
		{"bad log format", config{transport: "vsock", level: "info", format: "logfmt", listen: "127.0.0.1:0"}, "want text or json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(context.Background(), tc.c, io.Discard, nil); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"-h"}, 0, "", "-data-dir"},
		{[]string{"--help"}, 0, "", "-version"},
		{[]string{"-version"}, 0, "nitrosign-host " + buildinfo.DefaultVersion + "\ncommit  ", ""},
		{[]string{"--version"}, 0, "\ngo      " + runtime.Version() + "\n", ""},
		{[]string{"--bogus"}, 2, "", "bogus"},
		{[]string{"extra"}, 2, "", "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		code := mainWithArgs(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.errs) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.stdout, tc.errs)
		}
		if tc.stdout == "" && out.Len() != 0 {
			t.Errorf("%q: printed %q on stdout", tc.args, out.String())
		}
	}
}

// lineSink collects log lines and hands each to a channel.
type lineSink struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(s.buf[:i])
		s.buf = s.buf[i+1:]
		select {
		case s.lines <- line:
		default: // the test reads only what it waits for
		}
	}
}

// next returns the next JSON log line whose msg is msg, as a map.
func (s *lineSink) next(t *testing.T, msg string) map[string]any {
	t.Helper()
	for line := range s.lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("log line %q has no %s", line, k)
			}
		}
		if rec["msg"] == msg {
			return rec
		}
	}
	t.Fatalf("the log ended before %q", msg)
	return nil
}

// selfSigned writes a self-signed certificate for 127.0.0.1 with this
// serial and its key to certFile and keyFile.
func selfSigned(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "nitrosign-host test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	for path, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunLogsJSONLocksAndReloads runs the daemon with -log-format json:
// its log lines are JSON; a second daemon on its data directory is
// refused, naming it; SIGHUP (sent on the channel main feeds from the
// signal) serves the new certificate.
func TestRunLogsJSONLocksAndReloads(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, 1, certFile, keyFile)
	c := config{dataDir: dataDir, rotateBytes: -1, listen: "127.0.0.1:0", transport: "unix:" + t.TempDir(), conns: 1,
		level: "info", format: "json", cert: certFile, key: keyFile, credentials: "none"}
	logs := &lineSink{lines: make(chan string, 1024)}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, logs, hup) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	rec := logs.next(t, "listening")
	url, _ := rec["url"].(string)
	if !strings.HasPrefix(url, "https://127.0.0.1:") || rec["level"] != "INFO" || rec["data_dir"] != dataDir {
		t.Fatalf("listening line %v", rec)
	}

	// A second host on the same data directory (the lock is taken on
	// Linux only; elsewhere the second host starts, and stops at once).
	stopped, stop := context.WithCancel(context.Background())
	stop()
	err := run(stopped, config{dataDir: dataDir, listen: "127.0.0.1:0", transport: "unix:/tmp/x", level: "info", credentials: "none"}, io.Discard, nil)
	for _, want := range []string{"dirlock: the data directory " + dataDir + " is in use by nitrosign-host (pid " + strconv.Itoa(os.Getpid()) + " on ", "audit log"} {
		if runtime.GOOS == "linux" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("second host: %v, want a refusal saying %q", err, want)
		}
	}

	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	selfSigned(t, 2, certFile, keyFile)
	hup <- syscall.SIGHUP
	if rec := logs.next(t, "TLS certificate reloaded"); rec["trigger"] != "SIGHUP" {
		t.Fatalf("reload line %v", rec)
	}
	if got := serial(); got != 2 {
		t.Fatalf("after SIGHUP: serial %d, want 2", got)
	}
}
