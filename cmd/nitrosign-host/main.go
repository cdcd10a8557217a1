// Command nitrosign-host is the parent-instance daemon: the client-facing
// HTTP API, forwarding to the enclave over vsock.
//
// Usage:
//
//	nitrosign-host [-listen ADDR] [-enclave-cid N] [-enclave-port N] [-conns N] [-transport vsock|unix:DIR] [-log-level L]
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
	flag.Parse()
	if err := run(*listen, uint32(*cid), uint32(*port), *conns, *tr, *level); err != nil {
		fmt.Fprintf(os.Stderr, "nitrosign-host: %v\n", err)
		os.Exit(1)
	}
}

func run(listen string, cid, port uint32, conns int, spec, level string) error {
	log, err := logging.New(os.Stderr, level)
	if err != nil {
		return err
	}
	t, err := transport.Parse(spec, transport.ParentCID)
	if err != nil {
		return err
	}
	srv, err := host.New(&host.Config{Transport: t, EnclaveCID: cid, EnclavePort: port, Conns: conns, Logger: log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("listening", "url", "http://"+l.Addr().String(), "enclave", transport.Addr{ContextID: cid, Port: port}.String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx, l)
}
