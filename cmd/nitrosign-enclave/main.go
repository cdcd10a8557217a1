// Command nitrosign-enclave is the only program in the nitrosign enclave
// image. It derives its signing keys, then answers the host's protocol on a
// vsock port until it is stopped.
//
// Usage:
//
//	nitrosign-enclave [-genesis FILE] [-port N] [-nsm /dev/nsm|vsock:CID:PORT] [-transport vsock|unix:DIR -cid N] [-log-level L] [-log-format text|json]
//	nitrosign-enclave -version
//
// The flags are part of the image (the Dockerfile's CMD), hence measured;
// "unix:DIR" joins the vsock simulator and exists for `nitrosign dev` and
// tests.
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/internal/buildinfo"
	"github.com/nitrosign/nitrosign/internal/logging"
	"github.com/nitrosign/nitrosign/transport"
)

func main() {
	genesis := flag.String("genesis", "/etc/nitrosign/genesis.json", "genesis configuration `file` (part of the measured image)")
	port := flag.Uint("port", uint(transport.DefaultEnclavePort), "vsock `port` to serve the host protocol on")
	tr := flag.String("transport", "vsock", "`transport`: vsock, or unix:DIR for the vsock simulator")
	cid := flag.Uint("cid", uint(transport.DefaultEnclaveCID), "own context id (only with the simulator; AF_VSOCK knows its own)")
	level := flag.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := flag.String("log-format", "text", "log `format`: text, or json (one object a line)")
	nsmSpec := flag.String("nsm", nsm.DefaultSpec, "the NSM: /dev/nsm, or vsock:CID:PORT for the simulated NSM")
	version := flag.Bool("version", false, "print the version, commit, Go version and build flags, and exit")
	flag.Parse()
	if flag.NArg() != 0 {
		fatal(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	if *version {
		printVersion(os.Stdout)
		return
	}
	if err := run(*genesis, uint32(*port), *tr, uint32(*cid), *level, *format, *nsmSpec); err != nil {
		fatal(err)
	}
}

func run(genesisPath string, port uint32, spec string, cid uint32, level, format, nsmSpec string) error {
	log, err := logging.NewFormat(os.Stderr, level, format)
	if err != nil {
		return err
	}
	g, err := readCapped(genesisPath, genesis.MaxSize)
	if err != nil {
		return err
	}
	t, err := transport.Parse(spec, cid)
	if err != nil {
		return err
	}
	// Without its NSM an enclave can neither draw its seed from the
	// hardware nor attest: it does not start.
	dev, err := nsm.OpenSpec(context.Background(), nsmSpec, t)
	if err != nil {
		return fmt.Errorf("opening the NSM (%s): %w", nsmSpec, err)
	}
	defer dev.Close()
	cfg := enclave.Config{Genesis: g, Logger: log, NSM: dev}
	if err := withKMS(&cfg, t, dev); err != nil {
		return err
	}
	e, err := enclave.New(cfg)
	if err != nil {
		return err
	}
	l, err := t.Listen(port)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", l.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = e.Serve(ctx, l)
	log.Info("stopped")
	return err
}

// withKMS gives cfg a KMS client when the genesis configuration seals the
// seed with KMS: TLS ends here, over vsock-proxy on the parent, verified
// against the roots the genesis names (the embedded Amazon roots unless it
// is a development genesis), with the credentials the host pushes.
func withKMS(cfg *enclave.Config, t transport.Transport, dev nsm.Device) error {
	g, _, err := genesis.Parse(cfg.Genesis)
	if err != nil {
		return err
	}
	if g.KMS == nil {
		return nil
	}
	var roots *x509.CertPool
	if g.KMS.RootCAPEM != "" {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(g.KMS.RootCAPEM)) {
			return fmt.Errorf("genesis: kms.root_ca_pem holds no certificate")
		}
	}
	port := g.KMS.ProxyPort
	if port == 0 {
		port = kms.DefaultProxyPort
	}
	creds := kms.NewPushedCredentials(nil)
	client, err := kms.New(kms.Config{
		Region:      g.KMS.Region,
		Endpoint:    g.KMS.Endpoint,
		Dial:        kms.DialVsockProxy(t, transport.ParentCID, port),
		RootCAs:     roots,
		Credentials: creds,
		NSM:         dev,
	})
	if err != nil {
		return err
	}
	cfg.KMS, cfg.Credentials = client, creds
	return nil
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// printVersion prints the version the enclave attests (enclave.Version, in
// its user_data and health answer), the commit ("unknown": the
// reproducible build is made with -buildvcs=false), the Go version and the
// build flags as the build info records them, so that whoever holds a
// binary can see how it was built: CGO_ENABLED=0 (static), -trimpath,
// GOOS, GOARCH and the like. (The toolchain does not record -ldflags in a
// -trimpath build, whose record must hold no paths.)
func printVersion(w io.Writer) {
	info := buildinfo.Read()
	info.Version = enclave.Version
	if err := info.Write(w, "nitrosign-enclave", true); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "nitrosign-enclave: %v\n", err)
	os.Exit(1)
}
