// Command nitrosign-host is the parent-instance daemon: the client-facing
// HTTP API, forwarding to the enclave over vsock.
//
// Usage:
//
//	nitrosign-host [-data-dir DIR] [-audit-rotate-bytes N] [-listen ADDR] [-enclave-cid N] [-enclave-port N] [-conns N] [-transport vsock|unix:DIR] [-log-level L]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/logging"
	"github.com/nitrosign/nitrosign/transport"
)

func main() {
	listen := flag.String("listen", host.DefaultListen, "HTTP API listen `address`")
	cid := flag.Uint("enclave-cid", uint(transport.DefaultEnclaveCID), "the enclave's vsock context id (nitro-cli run-enclave --enclave-cid)")
	port := flag.Uint("enclave-port", uint(transport.DefaultEnclavePort), "the enclave's vsock port")
	conns := flag.Int("conns", 4, "persistent connections to the enclave")
	tr := flag.String("transport", "vsock", "`transport`: vsock, or unix:DIR to join a vsock simulator")
	level := flag.String("log-level", "info", "log `level`: debug, info, warn or error")
	dataDir := flag.String("data-dir", "/var/lib/nitrosign", "`directory` of the audit log (audit-*.log), persisted before any answer is released")
	rotate := flag.Int64("audit-rotate-bytes", host.DefaultAuditRotateBytes, "seal the live audit log segment and start a new one once it holds `N` bytes (0: never)")
	cert := flag.String("tls-cert", "", "serve HTTPS with this PEM certificate chain `file` (with -tls-key)")
	key := flag.String("tls-key", "", "PEM private key `file` for -tls-cert")
	creds := flag.String("credentials", "imds", "AWS credentials pushed to the enclave for KMS: `imds` (the instance role, IMDSv2) or none (an enclave with an ephemeral seed)")
	imdsEndpoint := flag.String("imds-endpoint", host.DefaultIMDSEndpoint, "IMDS `URL` (-credentials imds)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "nitrosign-host: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *rotate <= 0 {
		*rotate = -1 // never: host.Config's negative
	}
	cfg := config{dataDir: *dataDir, rotateBytes: *rotate, listen: *listen, cid: uint32(*cid), port: uint32(*port), conns: *conns, transport: *tr, level: *level, cert: *cert, key: *key, credentials: *creds, imds: *imdsEndpoint}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "nitrosign-host: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	dataDir     string
	rotateBytes int64
	listen      string
	cid, port   uint32
	conns       int
	transport   string
	level       string
	cert, key   string
	credentials string
	imds        string
}

func run(c config) error {
	log, err := logging.New(os.Stderr, c.level)
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
	log.Info("listening", "url", scheme+"://"+l.Addr().String(), "enclave", transport.Addr{ContextID: c.cid, Port: c.port}.String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx, l)
}
