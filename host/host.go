// Package host is the parent-instance daemon's client-facing side: an HTTP
// JSON API that forwards requests over vsock to the enclave.
//
// The host is trusted for availability only. It forwards each sign request's
// raw body and stamp header unchanged and relays the enclave's answer; it
// adds no authority of its own, and nothing it could add would be believed:
// the enclave verifies the client's stamp over the exact bytes the client
// sent. See docs/api.md for the API.
package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// DefaultListen is the API's default listen address.
const DefaultListen = "127.0.0.1:8420"

// maxHeaderBytes caps the headers of an API request.
const maxHeaderBytes = 16 << 10

// Config configures a Server. The zero value of every field but Transport
// means its default.
type Config struct {
	// Transport reaches the enclave (AF_VSOCK in production).
	Transport transport.Transport
	// EnclaveCID and EnclavePort address the enclave; defaults
	// transport.DefaultEnclaveCID and transport.DefaultEnclavePort.
	EnclaveCID, EnclavePort uint32
	// Conns is the number of persistent connections to the enclave
	// (default 4, at most MaxConns). Each carries many requests at once.
	Conns int
	// RequestTimeout bounds one request to the enclave (default 10 s).
	RequestTimeout time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// DataDir is where the host keeps the audit log (DataDir/audit-*.log).
	// Without it, the host releases no decision: every sign answer carries
	// an audit record that must be persisted first.
	DataDir string
	// AuditRotateBytes is the size at which the host ends the live audit
	// log segment with a rotate record, seals it and starts a new one
	// (default DefaultAuditRotateBytes, 256 MiB); negative: never, except
	// on demand (Server.RotateAuditLog).
	AuditRotateBytes int64
	// Credentials are the AWS credentials the enclave signs its KMS
	// requests with: an *IMDS on EC2 (the instance role's). The host
	// pushes them before unsealing and refreshes them before they expire.
	// Nil: none (an enclave with an ephemeral seed needs none).
	Credentials CredentialSource
	// UnsealPoll is how often the host checks the enclave's state, to
	// unseal it when it is locked and to store its checkpoints (default
	// 1 s).
	UnsealPoll time.Duration
	// TLSCertFile and TLSKeyFile, when both set, make Serve answer HTTPS
	// with this PEM certificate chain and key (TLS 1.2 or later). Both are
	// loaded again on Server.ReloadTLS and when either file changes.
	TLSCertFile, TLSKeyFile string
	// TLSPoll is how often Serve checks the TLS files for a change
	// (default DefaultTLSPoll; negative: never, ReloadTLS only).
	TLSPoll time.Duration
}

// Server is the host's HTTP API.
type Server struct {
	audit   *auditStore // nil without a data directory
	metrics *metrics
	tls     *tls.Config
	certs   *certReloader // nil without TLS
	tlsPoll time.Duration
	pool    *pool
	timeout time.Duration
	log     *slog.Logger
	mux     *http.ServeMux
	// signRoute is the handler the mux has for /v1/sign (serveHTTP).
	signRoute http.HandlerFunc

	unsealer   *unsealer            // nil without a data directory
	refresher  *CredentialRefresher // nil without a credential source
	unsealPoll time.Duration
}

// New returns a Server. It does not connect to the enclave until the first
// request.
// MaxConns bounds Config.Conns: the enclave accepts 64 connections at once
// (enclave.Serve), and the pool holds two for a slot while it replaces one
// left idle (the old one stays open for the calls still on it), so 16
// slots leave room for a restarting host's connections still closing.
const MaxConns = 16

func New(cfg *Config) (*Server, error) {
	if cfg == nil || cfg.Transport == nil {
		return nil, errors.New("host: a transport to the enclave is required")
	}
	c := *cfg
	if c.EnclaveCID == 0 {
		c.EnclaveCID = transport.DefaultEnclaveCID
	}
	if c.EnclavePort == 0 {
		c.EnclavePort = transport.DefaultEnclavePort
	}
	if c.Conns > MaxConns {
		return nil, fmt.Errorf("host: %d connections to the enclave: at most %d (the enclave accepts 64, and the pool may hold two per slot while it redials)", c.Conns, MaxConns)
	}
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		metrics: newMetrics(),
		pool:    newPool(c.Transport, c.EnclaveCID, c.EnclavePort, c.Conns, c.Logger),
		timeout: c.RequestTimeout,
		log:     c.Logger,
	}
	s.unsealPoll = c.UnsealPoll
	if s.unsealPoll <= 0 {
		s.unsealPoll = time.Second
	}
	if c.Credentials != nil {
		r, err := NewCredentialRefresher(&CredentialRefresherConfig{
			Source: c.Credentials,
			Push: func(ctx context.Context, cr Credentials) error {
				// An enclave with an ephemeral seed never calls KMS.
				if resp, err := s.pool.call(ctx, &proto.HealthRequest{}); err == nil {
					if h, ok := resp.(*proto.HealthResponse); ok && h.State == "ephemeral" {
						return nil
					}
				}
				return s.pushCredentials(ctx, cr)
			},
			Logger: c.Logger,
		})
		if err != nil {
			return nil, err
		}
		s.refresher = r
	}
	if c.DataDir != "" {
		s.unsealer = newUnsealer(s, c.DataDir, c.Credentials, c.Logger)
		s.pool.onConnect = s.unsealer.kick
		am := newAuditMetrics(s.metrics.reg)
		am.record = s.metrics.observeRecord
		s.audit = newAuditStore(c.DataDir, s.pool, c.Logger, am)
		s.audit.setRotateBytes(c.AuditRotateBytes)
	}
	s.exposeEnclave()
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return nil, errors.New("host: TLS needs both a certificate and a key file")
	}
	if c.TLSCertFile != "" {
		r, err := newCertReloader(c.TLSCertFile, c.TLSKeyFile, c.Logger)
		if err != nil {
			return nil, err
		}
		s.certs = r
		s.tls = &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12}
		s.tlsPoll = c.TLSPoll
		if s.tlsPoll == 0 {
			s.tlsPoll = DefaultTLSPoll
		}
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	route := func(method, path string, h func(http.ResponseWriter, *http.Request) string) http.HandlerFunc {
		// The series every answered request adds to, looked up once.
		ok := s.metrics.endpoint(path)
		f := func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			if r.Method != method {
				w.Header().Set("Allow", method)
				writeError(w, &api.Error{Code: refusal.CodeMethodNotAllowed, Message: fmt.Sprintf("%s %s: use %s", r.Method, path, method)})
				s.metrics.observe(path, refusal.CodeMethodNotAllowed, start)
				return
			}
			ok.observe(h(w, r), start)
		}
		s.mux.HandleFunc(path, f)
		return f
	}
	route(http.MethodGet, "/v1/health", s.health)
	route(http.MethodGet, "/v1/ready", s.ready)
	route(http.MethodGet, "/v1/keys", s.keys)
	s.signRoute = route(http.MethodPost, "/v1/sign", s.sign)
	route(http.MethodGet, "/v1/attestation", s.attestation)
	route(http.MethodGet, "/v1/audit", s.auditRecords)
	route(http.MethodPost, "/v1/admin", s.admin)
	// POST /v1/policy takes a policy_change or policy_cancel envelope: an
	// admin command like any other.
	s.mux.HandleFunc("GET /v1/policy", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.observe("/v1/policy", s.policy(w, r), start)
	})
	s.mux.HandleFunc("POST /v1/policy", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.observe("/v1/policy", s.admin(w, r), start)
	})
	route(http.MethodPost, "/v1/approvals", s.approve)
	route(http.MethodGet, "/v1/approvals/{id}", s.approvalInfo)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &api.Error{Code: refusal.CodeNotFound, Message: fmt.Sprintf("no such endpoint: %s", r.URL.Path)})
	})
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP sends POST /v1/sign, nearly every request of a busy host,
// straight to its handler, and the others through the mux: the mux's
// pattern matching allocates, and the answer is the same (the mux sends
// this exact path, unescaped, to the same handler).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/sign" && r.URL.RawPath == "" {
		s.signRoute(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Serve answers HTTP (HTTPS when configured) requests on l until ctx is
// done, then shuts down gracefully (in-flight requests get up to 5 seconds)
// and closes the connections to the enclave.
//
// Connections are kept alive between requests (for IdleTimeout), so that a
// busy client pays for its TCP and TLS handshakes once. Over TLS the host
// also speaks HTTP/2 (negotiated by ALPN), which carries a client's
// concurrent requests on one connection; plain HTTP stays HTTP/1.1 (no
// h2c: the API is meant to be served over TLS).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      s.timeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
		HTTP2: &http.HTTP2Config{
			// As many concurrent requests on one connection as the
			// enclave takes on one of its own (proto's default).
			MaxConcurrentStreams: proto.DefaultMaxInFlightPerConn,
		},
	}
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			// The certificate comes from TLSConfig's GetCertificate
			// (the reloader); ServeTLS adds HTTP/2 to what ALPN
			// offers.
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	defer s.pool.close()
	auditDone := make(chan struct{})
	actx, stopAudit := context.WithCancel(context.Background())
	if s.audit != nil {
		go func() { s.audit.run(actx); close(auditDone) }()
	} else {
		close(auditDone)
	}
	var bg sync.WaitGroup
	if s.unsealer != nil {
		bg.Go(func() { s.unsealer.run(actx, s.unsealPoll) })
	}
	if s.refresher != nil {
		bg.Go(func() { s.refresher.Run(actx) })
	}
	if s.certs != nil && s.tlsPoll > 0 {
		bg.Go(func() { s.certs.watch(actx.Done(), s.tlsPoll) })
	}
	defer func() { stopAudit(); <-auditDone; bg.Wait() }()
	select {
	case err := <-errc:
		return fmt.Errorf("host: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// call forwards req to the enclave, for at most RequestTimeout, and turns
// transport failures into API errors.
func (s *Server) call(ctx context.Context, req proto.Message) (proto.Message, *api.Error) {
	resp, err := s.pool.callTimeout(ctx, req, s.timeout)
	if err == nil {
		return resp, nil
	}
	var perr *proto.Error
	if errors.As(err, &perr) {
		// A refusal the enclave decided carries its audit record: the
		// enclave released it once the record was acknowledged; check that
		// it is the record on disk, as for a signature.
		if len(perr.AuditRecord) > 0 {
			if aerr := s.confirmAudit(ctx, perr.AuditRecord); aerr != nil {
				return nil, aerr
			}
		}
		return nil, &api.Error{Code: perr.Code, Rule: perr.Rule, Message: perr.Message}
	}
	if errors.Is(err, proto.ErrUnexpectedResponse) {
		s.log.Error("the enclave answered with the wrong message type", "err", err)
		return nil, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave"}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil, &api.Error{Code: refusal.CodeUnavailable, Message: "request cancelled"}
	}
	s.log.Warn("enclave call failed", "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, &api.Error{Code: refusal.CodeUnavailable, Message: "the enclave did not answer in time"}
	}
	// No connection could be made, or the one in use broke: the enclave
	// process is gone (in production systemd restarts it, in dev the
	// supervisor does, and the host unseals the new run). The host keeps
	// serving and says so.
	return nil, &api.Error{Code: refusal.CodeEnclaveUnavailable, Message: "the enclave is not reachable (not running, or restarting); retry later"}
}

// health answers GET /v1/health, the host's liveness: 200 whenever the
// host serves, with the readiness judgement in the body (status ok or
// degraded, the enclave's state and why) for people and dashboards. A
// liveness probe must not fail for what restarting the host cannot fix: a
// locked, restarting or KMS-refused enclave, or a full disk; /v1/ready
// answers 503 for those.
func (s *Server) health(w http.ResponseWriter, r *http.Request) string {
	out, _ := s.readiness(r.Context())
	writeJSON(w, http.StatusOK, out)
	return "ok"
}

// ready answers GET /v1/ready, the host's readiness to sign: 200 when the
// enclave runs, is unsealed and the audit log persists, else 503 with the
// reason and, when the enclave answered, its state.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) string {
	out, code := s.readiness(r.Context())
	if code != "" {
		writeJSON(w, refusal.Status(code), out)
		return code
	}
	writeJSON(w, http.StatusOK, out)
	return "ok"
}

// readiness asks the enclave for its health (for at most 2 s) and judges
// whether the service can sign. It returns the answer for /v1/health and
// /v1/ready, and "" when ready or else the error code that says why not.
// The checks, in order:
//   - the enclave answers (else enclave_unavailable: not running,
//     restarting, or not answering in time);
//   - the host keeps an audit log (else unavailable, rule audit: without
//     one it releases no decision);
//   - the audit log persists (else unavailable, rule audit, with the
//     store's reason: a full disk, a log the enclave's records do not
//     continue);
//   - the enclave is unsealed: its state is not "locked" (else
//     enclave_unavailable, with the last unseal error).
func (s *Server) readiness(ctx context.Context) (api.HealthResponse, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, aerr := s.call(ctx, &proto.HealthRequest{})
	if aerr != nil {
		return api.HealthResponse{Status: api.StatusDegraded, Error: aerr}, aerr.Code
	}
	h, ok := resp.(*proto.HealthResponse)
	if !ok {
		e := unexpected(resp)
		return api.HealthResponse{Status: api.StatusDegraded, Error: e}, e.Code
	}
	out := api.HealthResponse{
		Status: api.StatusOK,
		Enclave: &api.EnclaveHealth{
			State:         h.State,
			Version:       h.Version,
			Keys:          int(h.Keys),
			PolicyVersion: h.PolicyVersion,
			AuditSeq:      h.AuditSeq,
			StartedAtMS:   h.StartedUnixMS,
			UptimeMS:      h.UptimeMS,
		},
	}
	degraded := func(e *api.Error) (api.HealthResponse, string) {
		out.Status = api.StatusDegraded
		out.Error = e
		return out, e.Code
	}
	if s.audit == nil {
		return degraded(&api.Error{Code: refusal.CodeUnavailable, Rule: refusal.RuleAudit, Message: errNoAuditStore.Error()})
	}
	// Records that cannot be persisted stop every decision: not ready,
	// and say why.
	if why := s.audit.status(); why != "" {
		return degraded(&api.Error{Code: refusal.CodeUnavailable, Rule: refusal.RuleAudit, Message: "the host cannot persist audit records, so the enclave decides nothing: " + why})
	}
	if h.State == "locked" {
		// A locked enclave cannot sign.
		msg := "the enclave is locked: its sealed seed is not unsealed yet"
		if s.unsealer != nil {
			if st := s.unsealer.get(); st.Err != nil {
				msg += ": " + st.Err.Error()
			}
		}
		return degraded(&api.Error{Code: refusal.CodeEnclaveUnavailable, Message: msg})
	}
	return out, ""
}

// maxAuditRecords caps the records in one GET /v1/audit answer.
const maxAuditRecords = 1000

// auditRecords answers GET /v1/audit?from=SEQ with the persisted records
// from SEQ on (default 1), at most maxAuditRecords of them, each the exact
// signed JSON object the enclave made.
func (s *Server) auditRecords(w http.ResponseWriter, r *http.Request) string {
	from := uint64(1)
	q := r.URL.Query()
	for k := range q {
		if k != "from" {
			return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: fmt.Sprintf("unknown query parameter %q", k)})
		}
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 || len(q["from"]) > 1 {
			return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: "from: want one positive sequence number"})
		}
		from = n
	}
	if s.audit == nil {
		return writeError(w, &api.Error{Code: refusal.CodeNotFound, Message: "this host keeps no audit log"})
	}
	recs, err := s.audit.records(from, maxAuditRecords)
	if err != nil {
		s.log.Warn("reading the audit log failed", "err", err)
		return writeError(w, &api.Error{Code: refusal.CodeUnavailable, Message: "the audit log cannot be read"})
	}
	// Written by hand: encoding/json would re-escape the records (<, >, &),
	// and a record must reach the client byte for byte as signed.
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i, rec := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(rec)
	}
	b.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
	return "ok"
}

// maxNonceHex caps the nonce query parameter (proto.MaxNonceLen bytes).
const maxNonceHex = 2 * proto.MaxNonceLen

func (s *Server) attestation(w http.ResponseWriter, r *http.Request) string {
	q := r.URL.Query()
	for k := range q {
		if k != "nonce" {
			return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: fmt.Sprintf("unknown query parameter %q", k)})
		}
	}
	var nonce []byte
	if vs := q["nonce"]; len(vs) > 0 {
		h := strings.TrimPrefix(vs[0], "0x")
		b, err := hex.DecodeString(h)
		if len(vs) > 1 || err != nil || len(h) == 0 || len(h) > maxNonceHex {
			return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: fmt.Sprintf("nonce: want one parameter of 1 to %d bytes in hex", proto.MaxNonceLen)})
		}
		nonce = b
	}
	resp, aerr := s.call(r.Context(), &proto.AttestRequest{Nonce: nonce})
	if aerr != nil {
		return writeError(w, aerr)
	}
	a, ok := resp.(*proto.AttestResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	writeJSON(w, http.StatusOK, api.AttestationResponse{Document: base64.StdEncoding.EncodeToString(a.Document)})
	return "ok"
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) string {
	resp, aerr := s.call(r.Context(), &proto.KeysRequest{})
	if aerr != nil {
		return writeError(w, aerr)
	}
	k, ok := resp.(*proto.KeysResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	out := api.KeysResponse{Keys: make([]api.Key, 0, len(k.Keys))}
	for _, key := range k.Keys {
		out.Keys = append(out.Keys, api.Key{ID: key.ID, Address: ethtx.Address(key.Address).Hex(), Path: key.Path})
	}
	writeJSON(w, http.StatusOK, out)
	return "ok"
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) string {
	start := time.Now()
	buf, err := readBody(r)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return writeError(w, &api.Error{Code: refusal.CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", api.MaxBodySize)})
		}
		return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: "reading request body failed"})
	}
	// The body is used until the answer is written: proto.Marshal copies
	// it into the request frame, and signPending reads it.
	defer putBuffer(buf)
	body := buf.Bytes()
	stampHeader := r.Header.Values(stamp.Header)
	if len(stampHeader) > 1 {
		return writeError(w, &api.Error{Code: refusal.CodeUnauthorized, Message: fmt.Sprintf("more than one %s header", stamp.Header)})
	}
	req := &proto.SignRequest{Body: body}
	if len(stampHeader) == 1 {
		req.Stamp = stampHeader[0]
	}
	resp, aerr := s.call(r.Context(), req)
	if aerr != nil {
		s.metrics.decided(aerr.Code, aerr.Rule, start)
		return writeError(w, aerr)
	}
	sr, ok := resp.(*proto.SignResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	// No signature leaves the host unless its audit record is the one on
	// disk (the enclave released it only once the store acknowledged it).
	if aerr := s.confirmAuditSeq(r.Context(), sr.AuditSeq, sr.AuditRecord); aerr != nil {
		s.metrics.decided(aerr.Code, "", start)
		return writeError(w, aerr)
	}
	// A request waiting for approvals has no signature: 202 (approvals.go).
	if sr.Status != "" && sr.Status != proto.StatusSigned {
		return s.signPending(w, sr, body, start)
	}
	writeSignAnswer(w, sr)
	s.metrics.decided(outcomeSigned, "", start)
	return "ok"
}

// confirmAudit checks that an answer's audit record is on disk, or says
// why the answer must be withheld.
func (s *Server) confirmAudit(ctx context.Context, line []byte) *api.Error {
	return s.confirmAuditSeq(ctx, 0, line)
}

// confirmAuditSeq is confirmAudit for the record seq (0: read from the
// line).
func (s *Server) confirmAuditSeq(ctx context.Context, seq uint64, line []byte) *api.Error {
	if len(line) == 0 {
		return &api.Error{Code: refusal.CodeInternal, Message: "the enclave's answer carries no audit record"}
	}
	if s.audit == nil {
		return &api.Error{Code: refusal.CodeUnavailable, Message: errNoAuditStore.Error()}
	}
	var err error
	if seq != 0 {
		// The record is nearly always on disk already (the enclave
		// released the answer once the store acknowledged it): the
		// check needs no deadline then, and a request is spared making
		// one.
		done := false
		if done, err = s.audit.confirmedNow(seq, sha256.Sum256(line)); !done {
			ctx, cancel := context.WithTimeout(ctx, s.timeout)
			err = s.audit.confirmSeq(ctx, seq, line)
			cancel()
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		err = s.audit.confirm(ctx, line)
		cancel()
	}
	if err != nil {
		s.log.Error("audit record not on disk: answer withheld", "err", err)
		return &api.Error{Code: refusal.CodeUnavailable, Message: "the audit record could not be persisted; the answer is withheld"}
	}
	return nil
}

func unexpected(m proto.Message) *api.Error {
	return &api.Error{Code: refusal.CodeInternal, Message: fmt.Sprintf("unexpected answer from the enclave (message type %d)", m.Type())}
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// writeError answers with e and returns its code, the request's outcome.
func writeError(w http.ResponseWriter, e *api.Error) string {
	writeJSON(w, refusal.Status(e.Code), api.ErrorResponse{Error: *e})
	return e.Code
}
