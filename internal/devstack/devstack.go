// Package devstack runs the whole nitrosign system on one machine without
// Nitro hardware: the vsock simulator, the real enclave binary as its own
// process (joined to the simulator and to nothing else), and the host API.
// It is what `nitrosign dev` and the end-to-end tests run.
//
// The data directory keeps what must survive restarts: the dev client key
// (client.pem), the genesis configuration the enclave starts from
// (genesis.json), the simulated KMS's state and TLS CA (kms-*), and what
// the host stores for the enclave: the sealed seed (seed.sealed), its
// checkpoints and the audit log. The seed is sealed under the simulated
// KMS key, whose policy releases it only to the measured image (binary and
// genesis), so later runs show the same addresses, and a changed image is
// refused as AWS KMS would refuse it (see Options.AcceptNewImage).
package devstack

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/dirlock"
	"github.com/nitrosign/nitrosign/internal/logging"
	"github.com/nitrosign/nitrosign/internal/sim/kmssim"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// Defaults of `nitrosign dev`.
const (
	DefaultDataDir = ".nitrosign-dev"
	DefaultListen  = host.DefaultListen
)

// File names in the data directory.
const (
	ClientKeyFile = "client.pem"
	GenesisFile   = "genesis.json"
	// PCRsFile holds the simulated PCR0-2 of the running enclave image,
	// one N=HEX line each (the form of the --pcr flags), written with
	// NSMRootFile so that `nitrosign agent --dev` pins what this stack
	// measured; read it with ReadPCRs.
	PCRsFile = "pcrs.txt"
	// NSMRootFile is the simulated NSM's root certificate: verify the dev
	// stack's attestation documents against it.
	NSMRootFile = "nsm-root.pem"
)

// EnclaveBinaryName is the enclave executable's file name.
const EnclaveBinaryName = "nitrosign-enclave"

// Options configures a dev stack.
type Options struct {
	// DataDir holds the dev client key and genesis configuration
	// (default DefaultDataDir).
	DataDir string
	// Listen is the host API's address (default DefaultListen); port 0
	// picks a free port.
	Listen string
	// EnclaveBinary is the enclave executable. Empty: nitrosign-enclave next
	// to the running executable, else built from source with the go tool.
	EnclaveBinary string
	// EnclaveLog receives the enclave process's output (default: discarded).
	EnclaveLog io.Writer
	// Logger receives the host's logs (default: discarded).
	Logger *slog.Logger
	// EnclaveLogLevel is passed to the enclave's -log-level (default info).
	EnclaveLogLevel string
	// EnclaveLogFormat is passed to the enclave's -log-format: text or
	// json (empty: the enclave's default, text).
	EnclaveLogFormat string
	// AcceptNewImage updates the simulated KMS key policy to the enclave
	// image being started, as an admin would after reviewing a new image;
	// without it, a changed image is refused the sealed seed.
	AcceptNewImage bool
	// Supervision says how the enclave process is restarted when it ends
	// after the stack has started (zero: the defaults).
	Supervision Supervision
	// Genesis, when set, is a production genesis configuration file (as
	// `nitrosign genesis init` writes it) to run instead of the dev one:
	// no dev client, admin or approver keys are made, and the simulated
	// KMS serves the key ARNs it names, in their account and region. The
	// one change made to it is kms.root_ca_pem, set to the simulated KMS's
	// CA (the enclave's TLS to KMS must verify), so its PCR0 here is not
	// the production image's. It is copied to ProductionGenesisFile; a
	// data directory that holds the dev genesis is refused, as is what the
	// simulation cannot run (see prepareProductionGenesis).
	Genesis string
}

// Stack is a running dev stack.
type Stack struct {
	// URL is the host API's base URL.
	URL string
	// DataDir is the data directory in use.
	DataDir string
	// Genesis is Options.Genesis: the production genesis file the stack
	// runs, or empty for the dev genesis.
	Genesis string
	// ClientKeyPath is the dev client's private key (PKCS#8 PEM); empty
	// with a production genesis, which registers clients of its own.
	ClientKeyPath string
	// Client signs requests as the dev client; nil with a production
	// genesis.
	Client stamp.Signer
	// Keys are the enclave's signing keys.
	Keys []api.Key
	// EnclavePID is the first enclave process's id; Enclave reports the
	// current one after restarts.
	EnclavePID int
	// Isolated says whether the enclave runs in its own network namespace.
	Isolated bool
	// Supervision is how the enclave process is restarted (the defaults
	// filled in).
	Supervision Supervision
	// ColdStart is the time from the first enclave process's start to the
	// moment Start saw it unsealed and serving (its keys read). On a new
	// data directory it includes making and sealing the seed.
	ColdStart time.Duration

	sim     *vsocksim.Sim
	nsm     *nsmsim.Server
	nsmDone chan error
	// NSMRootPath is the simulated NSM's root certificate (PEM).
	NSMRootPath string
	// Measurement is the simulated PCR0-2 of the running enclave image.
	Measurement nsmsim.Measurement
	// KMSKeyARN is the simulated KMS key the seed is sealed under; empty
	// for an ephemeral seed (a genesis.json without a kms section).
	KMSKeyARN string

	kms       *kmssim.Server
	proxy     *vsockProxy
	host      *host.Server
	enclave   *supervisor
	cancel    context.CancelFunc
	hostDone  chan error
	closeOnce sync.Once
	closeErr  error
	lock      *dirlock.Lock // the data directory's, released last by Close
}

// Start starts the simulator, the enclave process and the host, and returns
// once the host answers with the enclave's keys. From then on the enclave
// process is supervised: when it ends (a crash, kill -9) it is started
// again with backoff (Options.Supervision) while the host keeps running,
// and the host unseals the new run, as in production.
//
// Start first takes the data directory's lock (package dirlock): while
// the stack runs, another stack or a nitrosign-host on the same directory
// is refused, with this one named. Close releases it.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.DataDir == "" {
		opts.DataDir = DefaultDataDir
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.EnclaveLog == nil {
		opts.EnclaveLog = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EnclaveLogLevel == "" {
		opts.EnclaveLogLevel = "info"
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: data dir: %w", err)
	}
	// Before anything in the directory is read or made: a second dev
	// stack (or a nitrosign-host) on it would fork its audit log.
	lock, err := dirlock.Acquire(opts.DataDir, "nitrosign dev")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	kmsCA, kmsCAPEM, err := loadOrCreateKMSCA(opts.DataDir)
	if err != nil {
		return nil, err
	}
	genesisPath := filepath.Join(opts.DataDir, GenesisFile)
	var (
		signer     stamp.Signer
		acct       = devAccount
		kmsSection *genesis.KMS
	)
	if opts.Genesis != "" {
		if acct, kmsSection, err = prepareProductionGenesis(opts.DataDir, opts.Genesis, kmsCAPEM); err != nil {
			return nil, err
		}
	} else {
		if err := refuseProductionDataDir(opts.DataDir); err != nil {
			return nil, err
		}
		var created bool
		if signer, genesisPath, created, err = prepareDataDir(opts.DataDir); err != nil {
			return nil, err
		}
		if created {
			arn, err := createSealingKey(ctx, opts.DataDir, kmsCA)
			if err != nil {
				return nil, err
			}
			g, err := os.ReadFile(genesisPath)
			if err != nil {
				return nil, fmt.Errorf("devstack: %w", err)
			}
			admins, err := ensureAdmins(opts.DataDir)
			if err != nil {
				return nil, err
			}
			if g, err = withKMS(g, arn, kmsCAPEM, admins); err != nil {
				return nil, err
			}
			if err := writeFileAtomic(genesisPath, g, 0o600); err != nil {
				return nil, err
			}
		}
		if kmsSection, err = genesisKMS(genesisPath); err != nil {
			return nil, err
		}
	}
	if kmsSection == nil {
		opts.Logger.Warn("genesis.json has no kms section: the seed is ephemeral and the addresses change at every start; remove it from the data directory to make a sealed one", "path", genesisPath)
	}
	bin, err := findEnclaveBinary(ctx, opts.EnclaveBinary, opts.DataDir)
	if err != nil {
		return nil, err
	}
	// Listen before starting anything, so a busy port fails fast.
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("devstack: listen on %s: %w (is another nitrosign dev running? use --listen)", opts.Listen, err)
	}

	s := &Stack{
		lock:    lock,
		DataDir: opts.DataDir,
		Genesis: opts.Genesis,
		URL:     "http://" + ln.Addr().String(),
	}
	if signer != nil {
		s.Client, s.ClientKeyPath = signer, filepath.Join(opts.DataDir, ClientKeyFile)
	}
	defer func() {
		if err != nil {
			ln.Close()
			s.Close()
		}
	}()

	s.sim, err = vsocksim.New("")
	if err != nil {
		return nil, err
	}
	if err := s.startNSM(bin, genesisPath); err != nil {
		return nil, err
	}
	var creds host.CredentialSource
	if kmsSection != nil {
		if err := s.startKMS(ctx, kmsCA, acct, kmsSection, opts.Genesis != "", opts.AcceptNewImage, opts.Logger); err != nil {
			return nil, err
		}
		creds = host.StaticCredentials{AccessKeyID: kmssim.DefaultAccessKeyID, SecretAccessKey: kmssim.DefaultSecretAccessKey}
	}
	if err := s.startEnclave(bin, genesisPath, opts); err != nil {
		return nil, err
	}

	srv, err := host.New(&host.Config{
		Transport:   s.sim.Endpoint(transport.ParentCID),
		EnclaveCID:  transport.DefaultEnclaveCID,
		EnclavePort: transport.DefaultEnclavePort,
		Logger:      opts.Logger,
		DataDir:     opts.DataDir,
		Credentials: creds,
		UnsealPoll:  250 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	s.host = srv
	hctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.hostDone = make(chan error, 1)
	go func() { s.hostDone <- srv.Serve(hctx, ln) }()

	if err := s.waitReady(ctx, opts.Logger); err != nil {
		return nil, err
	}
	s.ColdStart = time.Since(s.enclave.snapshot().StartedAt)
	if err := s.enclave.beginSupervision(); err != nil {
		return nil, fmt.Errorf("devstack: the enclave did not start: %w (see its log above)", err)
	}
	return s, nil
}

// prepareDataDir makes sure the data directory has a dev client key and a
// genesis configuration that registers it; created reports a new genesis.
func prepareDataDir(dir string) (_ stamp.Signer, _ string, created bool, _ error) {
	keyPath := filepath.Join(dir, ClientKeyFile)
	genesisPath := filepath.Join(dir, GenesisFile)
	newKey := false
	pemBytes, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		s, gerr := stamp.GenerateSigner(stamp.Ed25519)
		if gerr != nil {
			return nil, "", false, fmt.Errorf("devstack: %w", gerr)
		}
		pemBytes, err = stamp.MarshalPrivateKeyPEM(s)
		if err != nil {
			return nil, "", false, fmt.Errorf("devstack: %w", err)
		}
		if err := writeFileAtomic(keyPath, pemBytes, 0o600); err != nil {
			return nil, "", false, err
		}
		newKey = true
	} else if err != nil {
		return nil, "", false, fmt.Errorf("devstack: %w", err)
	}
	signer, err := stamp.ParseSignerPEM(pemBytes)
	if err != nil {
		return nil, "", false, fmt.Errorf("devstack: %s: %w", keyPath, err)
	}
	if _, err := os.Stat(genesisPath); newKey || errors.Is(err, os.ErrNotExist) {
		var files []string
		for i := 1; i <= ApproverCount; i++ {
			files = append(files, ApproverKeyFile(i))
		}
		approvers, err := ensureKeys(dir, files)
		if err != nil {
			return nil, "", false, err
		}
		g, err := ExampleGenesis(signer.PublicKey(), approvers...)
		if err != nil {
			return nil, "", false, err
		}
		if err := writeFileAtomic(genesisPath, g, 0o600); err != nil {
			return nil, "", false, err
		}
		created = true
	}
	return signer, genesisPath, created, nil
}

// ReadPCRs reads the PCRs a dev stack on dataDir wrote (PCRsFile).
func ReadPCRs(dataDir string) (map[int][]byte, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, PCRsFile))
	if err != nil {
		return nil, fmt.Errorf("devstack: %w (is `nitrosign dev` running on this data directory?)", err)
	}
	pcrs := map[int][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n, h, ok := strings.Cut(line, "=")
		i, err := strconv.Atoi(n)
		v, herr := hex.DecodeString(h)
		if !ok || err != nil || i < 0 || i > 2 || herr != nil || len(v) != 48 || pcrs[i] != nil {
			return nil, fmt.Errorf("devstack: %s: malformed line %q", PCRsFile, line)
		}
		pcrs[i] = v
	}
	if pcrs[0] == nil {
		return nil, fmt.Errorf("devstack: %s: no PCR0", PCRsFile)
	}
	return pcrs, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("devstack: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("devstack: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("devstack: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// findEnclaveBinary returns the enclave executable to run: the one given,
// else nitrosign-enclave next to the running executable, else one built from
// the source tree in the current directory.
func findEnclaveBinary(ctx context.Context, given, dataDir string) (string, error) {
	if given != "" {
		return given, nil
	}
	exe, err := os.Executable()
	if err == nil {
		cand := filepath.Join(filepath.Dir(exe), EnclaveBinaryName)
		if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() {
			return cand, nil
		}
	}
	out := filepath.Join(dataDir, "bin", EnclaveBinaryName)
	if err := BuildEnclave(ctx, out); err != nil {
		return "", fmt.Errorf("devstack: %s not found next to %s and building it failed (run `make build` in the source tree): %w", EnclaveBinaryName, exe, err)
	}
	return filepath.Abs(out)
}

// BuildEnclave builds the enclave binary from the source tree around the
// current directory, as `make enclave` does: static, trimmed, reproducible.
func BuildEnclave(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, "github.com/nitrosign/nitrosign/cmd/nitrosign-enclave")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

func (s *Stack) startEnclave(bin, genesisPath string, opts Options) error {
	abs, err := filepath.Abs(genesisPath)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	args := []string{
		"-transport", s.sim.Spec(),
		"-cid", strconv.FormatUint(uint64(transport.DefaultEnclaveCID), 10),
		"-port", strconv.FormatUint(uint64(transport.DefaultEnclavePort), 10),
		"-genesis", abs,
		"-log-level", opts.EnclaveLogLevel,
		"-nsm", fmt.Sprintf("vsock:%d:%d", transport.ParentCID, nsmsim.DefaultPort),
	}
	if opts.EnclaveLogFormat != "" {
		args = append(args, "-log-format", opts.EnclaveLogFormat)
	}
	p, err := startSupervisor(bin, args, opts.EnclaveLog, opts.EnclaveLogFormat == logging.FormatJSON, opts.Logger, opts.Supervision)
	if err != nil {
		return err
	}
	s.enclave = p
	s.Isolated = p.isolate
	s.Supervision = p.policy
	s.EnclavePID = p.snapshot().PID
	return nil
}

// copyLines copies the enclave process's output to w line by line, each
// marked as the enclave's: prefixed with "enclave | ", or, when the
// process logs JSON (jsonLog), with a first field "process":"enclave" in
// each object, so that the stream stays one JSON object a line for a log
// shipper; a line that is not an object (a panic's trace) becomes
// {"process":"enclave","output":LINE}.
func copyLines(w io.Writer, jsonLog bool, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case !jsonLog:
			fmt.Fprintf(w, "enclave | %s\n", line)
		case len(line) > 2 && line[0] == '{' && line[1] == '"' && json.Valid(line):
			fmt.Fprintf(w, `{"process":"enclave",%s`+"\n", line[1:])
		default:
			q, _ := json.Marshal(string(line))
			fmt.Fprintf(w, `{"process":"enclave","output":%s}`+"\n", q)
		}
	}
	io.Copy(io.Discard, r)
}

// startNSM measures the enclave image (binary and genesis) as a Nitro
// enclave's PCRs would, and serves a simulated NSM for it on the parent's
// side of the vsock simulator; its root certificate goes to DIR/nsm-root.pem.
func (s *Stack) startNSM(bin, genesisPath string) error {
	m, err := nsmsim.Measure(bin, genesisPath)
	if err != nil {
		return fmt.Errorf("devstack: measuring the enclave image: %w", err)
	}
	srv, err := nsmsim.New(nsmsim.Options{Image: m})
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.NSMRootPath = filepath.Join(s.DataDir, NSMRootFile)
	if err := writeFileAtomic(s.NSMRootPath, srv.RootPEM(), 0o644); err != nil {
		srv.Close()
		return err
	}
	pcrs := fmt.Sprintf("0=%x\n1=%x\n2=%x\n", m.PCR0, m.PCR1, m.PCR2)
	if err := writeFileAtomic(filepath.Join(s.DataDir, PCRsFile), []byte(pcrs), 0o644); err != nil {
		srv.Close()
		return err
	}
	l, err := s.sim.Endpoint(transport.ParentCID).Listen(nsmsim.DefaultPort)
	if err != nil {
		srv.Close()
		return fmt.Errorf("devstack: %w", err)
	}
	s.nsm, s.Measurement = srv, m
	s.nsmDone = make(chan error, 1)
	go func() { s.nsmDone <- srv.Serve(l) }()
	return nil
}

// startKMS serves the simulated KMS on the data directory's state, trusting
// the simulated NSM's root for attestations, with the key policy naming
// this image on a key's first use or when accept is set, and the
// vsock-proxy that carries the enclave's TLS to it. With addKeys (a
// production genesis) it first adds the keys the genesis names that the
// simulator does not hold yet, as if they had been created in AWS.
func (s *Stack) startKMS(ctx context.Context, ca tls.Certificate, acct kmsAccount, k *genesis.KMS, addKeys, accept bool, log *slog.Logger) error {
	root, err := firstCert(s.nsm.RootPEM())
	if err != nil {
		return err
	}
	srv, err := newKMSSim(s.DataDir, acct, ca, []*x509.Certificate{root})
	if err != nil {
		return err
	}
	s.kms, s.KMSKeyARN = srv, k.KeyID
	for _, arn := range k.KeyIDs() {
		if addKeys && !srv.HasKey(keyIDOf(arn)) {
			if _, err := srv.AddKey(keyIDOf(arn), "nitrosign dev stack: stands in for the AWS KMS key the production genesis names"); err != nil {
				return fmt.Errorf("devstack: %w", err)
			}
		}
		named, err := policyNamesImage(ctx, srv, acct, arn)
		if err != nil {
			return err
		}
		if !named || accept {
			if err := putImagePolicy(ctx, srv, acct, arn, s.Measurement); err != nil {
				return err
			}
			if named {
				log.Warn("simulated KMS key policy updated to this enclave image (--accept-new-image)", "key", arn, "pcr0", hex.EncodeToString(s.Measurement.PCR0[:]))
			}
		}
	}
	port := genesis.DefaultKMSProxyPort
	if k.ProxyPort != 0 {
		port = k.ProxyPort
	}
	s.proxy, err = startVsockProxy(s.sim.Endpoint(transport.ParentCID), port, strings.TrimPrefix(srv.URL(), "https://"))
	return err
}

func firstCert(pemBytes []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("devstack: no certificate in the NSM root PEM")
	}
	return x509.ParseCertificate(b.Bytes)
}

// startPoll is how often Start checks whether the enclave listens and is
// unsealed: short, so that Stack.ColdStart measures the enclave, not the
// poll.
const startPoll = 10 * time.Millisecond

// waitUnsealed waits until the host has unsealed the enclave; a KMS
// refusal ends the wait at once with the reason.
func (s *Stack) waitUnsealed(ctx context.Context) error {
	for {
		st := s.host.Unseal()
		switch {
		case st.State == host.UnsealDone:
			return nil
		case st.State == host.UnsealFailed && st.Code == refusal.CodeKMSAccessDenied:
			d, ok := s.kms.LastDenial()
			return denialError(d, ok, s.Measurement, st.Err.Error())
		}
		select {
		case <-s.enclave.failed:
			return fmt.Errorf("devstack: the enclave did not start: %w (see its log above)", s.enclave.err())
		case <-ctx.Done():
			if st.Err != nil {
				return fmt.Errorf("devstack: the enclave was not unsealed within 30 s: %w", st.Err)
			}
			return fmt.Errorf("devstack: the enclave was not unsealed within 30 s")
		case <-time.After(startPoll):
		}
	}
}

// waitReady waits until the host reaches the enclave, then reads its keys.
func (s *Stack) waitReady(ctx context.Context, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ep := s.sim.Endpoint(transport.ParentCID)
	for {
		select {
		case <-s.enclave.failed:
			return fmt.Errorf("devstack: the enclave did not start: %w (see its log above)", s.enclave.err())
		case err := <-s.hostDone:
			s.hostDone <- err
			return fmt.Errorf("devstack: the host stopped: %w", err)
		default:
		}
		conn, err := ep.Dial(ctx, transport.DefaultEnclaveCID, transport.DefaultEnclavePort)
		if err == nil && s.KMSKeyARN != "" {
			if err := s.waitUnsealed(ctx); err != nil {
				conn.Close()
				return err
			}
		}
		if err == nil {
			c := proto.NewClient(conn, &proto.ClientOptions{Logger: log})
			resp, err := c.Call(ctx, &proto.KeysRequest{})
			c.Close()
			if err != nil {
				return fmt.Errorf("devstack: asking the enclave for its keys: %w", err)
			}
			kr, ok := resp.(*proto.KeysResponse)
			if !ok {
				return fmt.Errorf("devstack: unexpected answer to a keys request")
			}
			for _, k := range kr.Keys {
				s.Keys = append(s.Keys, api.Key{ID: k.ID, Address: ethtx.Address(k.Address).Hex(), Path: k.Path})
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devstack: the enclave did not listen within 30 s: %w", err)
		case <-time.After(startPoll):
		}
	}
}

// Wait blocks until ctx is done or the host stops on its own. The enclave
// process ending does not end it: it is restarted (see Start).
func (s *Stack) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.hostDone:
		s.hostDone <- err
		if err == nil {
			err = errors.New("host stopped")
		}
		return fmt.Errorf("devstack: %w", err)
	}
}

// Enclave reports the supervised enclave process: its current pid and
// how many times it was restarted.
func (s *Stack) Enclave() EnclaveStatus { return s.enclave.snapshot() }

// KillEnclave kills the current enclave process with SIGKILL, as a crash
// would end it, and returns its pid. The supervisor starts it again; the
// host keeps running. For tests and fault injection.
func (s *Stack) KillEnclave() (int, error) { return s.enclave.signal(os.Kill) }

// SignalEnclave sends sig to the current enclave process and returns its
// pid: for fault injection (SIGSTOP and SIGCONT freeze and thaw it).
func (s *Stack) SignalEnclave(sig os.Signal) (int, error) { return s.enclave.signal(sig) }

// Close stops the host, then the enclave process (no more restarts;
// SIGTERM, then SIGKILL after 5 seconds), removes the simulator's
// sockets, and releases the data directory's lock.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.hostDone
		}
		if s.enclave != nil {
			s.closeErr = s.enclave.close()
		}
		if s.proxy != nil {
			s.proxy.Close()
		}
		if s.kms != nil {
			s.kms.Close()
		}
		if s.nsm != nil {
			s.nsm.Close()
			<-s.nsmDone
		}
		if s.sim != nil {
			if err := s.sim.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
		// Last: nothing of this stack writes to the directory any more.
		if err := s.lock.Release(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}
