// Command nitrosign-host is the parent-instance daemon: the client-facing
// HTTP API, forwarding to the enclave over vsock.
//
// It holds its data directory's lock while it runs (a second host or
// `nitrosign dev` on the directory is refused, naming this one), and
// reloads its TLS certificate on SIGHUP and when the files change.
//
// Usage:
//
//	nitrosign-host [-data-dir DIR] [-audit-rotate-bytes N] [-listen ADDR] [-enclave-cid N] [-enclave-port N] [-conns N] [-transport vsock|unix:DIR] [-log-level L] [-log-format text|json] [-tls-cert FILE -tls-key FILE]
//	nitrosign-host -version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/buildinfo"
	"github.com/nitrosign/nitrosign/internal/dirlock"
	"github.com/nitrosign/nitrosign/internal/logging"
	"github.com/nitrosign/nitrosign/transport"
)

func main() {
	os.Exit(mainWithArgs(os.Args[1:], os.Stdout, os.Stderr))
}

// mainWithArgs parses the command line and runs the daemon, returning the
// exit status: 0 after a clean stop, -h or -version; 1 on failure; 2 for a
// bad command line.
func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nitrosign-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", host.DefaultListen, "HTTP API listen `address`")
	cid := fs.Uint("enclave-cid", uint(transport.DefaultEnclaveCID), "the enclave's vsock context id (nitro-cli run-enclave --enclave-cid)")
	port := fs.Uint("enclave-port", uint(transport.DefaultEnclavePort), "the enclave's vsock port")
	conns := fs.Int("conns", 4, "persistent connections to the enclave")
	tr := fs.String("transport", "vsock", "`transport`: vsock, or unix:DIR to join a vsock simulator")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := fs.String("log-format", "text", "log `format`: text, or json (one object a line, for log shippers)")
	dataDir := fs.String("data-dir", "/var/lib/nitrosign", "`directory` of the audit log (audit-*.log), persisted before any answer is released")
	rotate := fs.Int64("audit-rotate-bytes", host.DefaultAuditRotateBytes, "seal the live audit log segment and start a new one once it holds `N` bytes (0: never)")
	cert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate chain `file` (with -tls-key)")
	key := fs.String("tls-key", "", "PEM private key `file` for -tls-cert")
	creds := fs.String("credentials", "imds", "AWS credentials pushed to the enclave for KMS: `imds` (the instance role, IMDSv2) or none (an enclave with an ephemeral seed)")
	imdsEndpoint := fs.String("imds-endpoint", host.DefaultIMDSEndpoint, "IMDS `URL` (-credentials imds)")
	version := fs.Bool("version", false, "print the version, commit and Go version, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "nitrosign-host: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *version {
		if err := buildinfo.Read().Write(stdout, "nitrosign-host", false); err != nil {
			return 1
		}
		return 0
	}
	if *rotate <= 0 {
		*rotate = -1 // never: host.Config's negative
	}
	cfg := config{dataDir: *dataDir, rotateBytes: *rotate, listen: *listen, cid: uint32(*cid), port: uint32(*port), conns: *conns, transport: *tr, level: *level, format: *format, cert: *cert, key: *key, credentials: *creds, imds: *imdsEndpoint}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the TLS certificate (and no longer ends the host).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := run(ctx, cfg, stderr, hup); err != nil {
		fmt.Fprintf(stderr, "nitrosign-host: %v\n", err)
		return 1
	}
	return 0
}

type config struct {
	dataDir     string
	rotateBytes int64
	listen      string
	cid, port   uint32
	conns       int
	transport   string
	level       string
	format      string
	cert, key   string
	credentials string
	imds        string
}

// run serves until ctx is done, logging to logOut; each value from hup
// (SIGHUP) reloads the TLS certificate.
func run(ctx context.Context, c config, logOut io.Writer, hup <-chan os.Signal) error {
	if c.format == "" {
		c.format = logging.FormatText
	}
	log, err := logging.NewFormat(logOut, c.level, c.format)
	if err != nil {
		return err
	}
	t, err := transport.Parse(c.transport, transport.ParentCID)
	if err != nil {
		return err
	}
	var creds host.CredentialSource
	switch c.credentials {
	case "imds":
		imds, err := host.NewIMDS(&host.IMDSConfig{Endpoint: c.imds})
		if err != nil {
			return err
		}
		creds = imds
	case "none", "":
	default:
		return fmt.Errorf("-credentials %q: want imds or none", c.credentials)
	}
	if c.dataDir != "" {
		// Before anything in the directory is read or written: a
		// second host (or nitrosign dev) on it would fork the audit log.
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return err
		}
		lock, err := dirlock.Acquire(c.dataDir, "nitrosign-host")
		if err != nil {
			return err
		}
		defer lock.Release()
		if !lock.Enforced {
			log.Warn("the data directory is not locked on this system: run one host per directory", "dir", c.dataDir)
		}
	}
	srv, err := host.New(&host.Config{Transport: t, EnclaveCID: c.cid, EnclavePort: c.port, Conns: c.conns, Logger: log,
		DataDir: c.dataDir, AuditRotateBytes: c.rotateBytes, TLSCertFile: c.cert, TLSKeyFile: c.key, Credentials: creds})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if c.cert != "" {
		scheme = "https"
	}
	log.Info("listening", "url", scheme+"://"+l.Addr().String(), "enclave", transport.Addr{ContextID: c.cid, Port: c.port}.String(), "data_dir", c.dataDir)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// The reloader logs the outcome, and why on failure.
				if err := srv.ReloadTLS(); errors.Is(err, host.ErrNoTLS) {
					log.Info("SIGHUP: nothing to reload (serving plain HTTP)")
				}
			}
		}
	}()
	return srv.Serve(ctx, l)
}
