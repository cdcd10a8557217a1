package kms

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/nitrosign/nitrosign/attestation"
	"github.com/nitrosign/nitrosign/enclave/cms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/internal/sim/kmssim"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/kmspolicy"
	"github.com/nitrosign/nitrosign/transport"
)

const (
	testAccount = kmssim.DefaultAccountID
	testRegion  = kmssim.DefaultRegion
	enclaveRole = "arn:aws:iam::" + testAccount + ":role/nitrosign-enclave"
	// The enclave's credentials: values that must never appear in an
	// error or a log line.
	enclaveSecret = "enclave-SECRET-must-not-leak-5f0c9e"
	enclaveToken  = "enclave-TOKEN-must-not-leak-a71d2b"
	// productionHost is the name the simulator's certificate also carries,
	// so that a client with the default endpoint reaches it through Dial,
	// as the enclave reaches KMS through vsock-proxy.
	productionHost = "kms." + testRegion + ".amazonaws.com"
)

var (
	testImage  = nsmsim.MeasureBytes([]byte("nitrosign-enclave"), []byte(`{"genesis":1}`))
	otherImage = nsmsim.MeasureBytes([]byte("nitrosign-enclave, modified"), []byte(`{"genesis":1}`))

	enclaveIdentity = kmssim.Identity{
		AccessKeyID:     "ASIAENCLAVETEST00001",
		SecretAccessKey: enclaveSecret,
		SessionToken:    enclaveToken,
		ARN:             "arn:aws:sts::" + testAccount + ":assumed-role/nitrosign-enclave/i-0123456789abcdef0",
		// GenerateRandom is on no key: the role's IAM policy pins the image.
		Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:GenerateRandom","Resource":"*",
			"Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"` + hex.EncodeToString(testImage.PCR0[:]) + `"}}}]}`,
	}
)

func enclaveCredentials(expires time.Time) aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     enclaveIdentity.AccessKeyID,
		SecretAccessKey: enclaveSecret,
		SessionToken:    enclaveToken,
		CanExpire:       true,
		Expires:         expires,
	}
}

// recordingNSM is a simulated NSM that remembers what it was asked to
// attest.
type recordingNSM struct {
	nsm.Device
	mu   sync.Mutex
	reqs []nsm.AttestRequest
}

func (r *recordingNSM) Attest(ctx context.Context, req nsm.AttestRequest) ([]byte, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.Device.Attest(ctx, req)
}

func (r *recordingNSM) requests() []nsm.AttestRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]nsm.AttestRequest(nil), r.reqs...)
}

// fixture is a simulated KMS trusting two simulated NSMs, one for the
// image the key policy names and one for another image, and a key whose
// policy is what KeyPolicy prints for the first.
type fixture struct {
	sim     *kmssim.Server
	nsm     *recordingNSM // testImage
	other   *recordingNSM // otherImage
	admin   *awskms.Client
	keyID   string
	creds   *PushedCredentials
	dials   atomic.Int32
	simAddr string
}

func newNSM(t *testing.T, m nsmsim.Measurement) (*recordingNSM, *x509.Certificate) {
	t.Helper()
	n, err := nsmsim.New(nsmsim.Options{Image: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	b, _ := pem.Decode(n.RootPEM())
	root, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &recordingNSM{Device: n}, root
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	var root, otherRoot *x509.Certificate
	f.nsm, root = newNSM(t, testImage)
	f.other, otherRoot = newNSM(t, otherImage)
	sim, err := kmssim.New(kmssim.Options{
		Roots:      []*x509.Certificate{root, otherRoot},
		Identities: []kmssim.Identity{kmssim.DefaultIdentity(), enclaveIdentity},
		Hosts:      []string{productionHost},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	f.sim = sim
	f.simAddr = strings.TrimPrefix(sim.URL(), "https://")
	f.admin = awskms.New(awskms.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(sim.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(kmssim.DefaultAccessKeyID, kmssim.DefaultSecretAccessKey, ""),
		HTTPClient:   sim.Client(),
		Retryer:      aws.NopRetryer{},
	})
	f.keyID = f.createKey(t, testImage.PCR0[:])
	f.creds = NewPushedCredentials(nil)
	if err := f.creds.Set(enclaveCredentials(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	return f
}

// createKey makes a key whose policy is kmspolicy.KeyPolicy's for pcr0 and the
// enclave's role.
func (f *fixture) createKey(t *testing.T, pcr0 []byte) string {
	t.Helper()
	policy, err := kmspolicy.KeyPolicy(kmspolicy.Options{PCR0: [][]byte{pcr0}, Account: testAccount, Role: enclaveRole})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.admin.CreateKey(context.Background(), &awskms.CreateKeyInput{Policy: aws.String(string(policy))})
	if err != nil {
		t.Fatal(err)
	}
	return *out.KeyMetadata.KeyId
}

func (f *fixture) simCA(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.sim.CACertPEM()) {
		t.Fatal("the simulator's CA does not parse")
	}
	return pool
}

// dialTo is a Config.Dial to addr over TCP, counting connections: the
// simulator's listener standing in for vsock-proxy, which carries the
// enclave's TCP bytes to KMS.
func (f *fixture) dialTo(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		f.dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// config is the enclave's configuration against the simulator.
func (f *fixture) config(t *testing.T) Config {
	return Config{
		Region:      testRegion,
		Endpoint:    f.sim.URL(),
		Dial:        f.dialTo(f.simAddr),
		RootCAs:     f.simCA(t),
		Credentials: f.creds,
		NSM:         f.nsm,
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// noSecrets fails the test if s holds a credential secret or one of the
// secret byte strings given (in hex or base64, as well as raw).
func noSecrets(t *testing.T, what, s string, secrets ...[]byte) {
	t.Helper()
	for _, bad := range []string{enclaveSecret, enclaveToken} {
		if strings.Contains(s, bad) {
			t.Errorf("%s holds a credential secret: %s", what, s)
		}
	}
	for _, b := range secrets {
		if len(b) == 0 {
			continue
		}
		for _, form := range []string{string(b), hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), fmt.Sprint(b)} {
			if strings.Contains(s, form) {
				t.Errorf("%s holds secret bytes: %s", what, s)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := newClient(t, f.config(t))
	ctx := context.Background()
	ec := map[string]string{"nitrosign": "seed", "enclave": "1"}

	key, blob, err := c.GenerateDataKey(ctx, f.keyID, ec)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if len(key) != DataKeySize || bytes.Equal(key, make([]byte, DataKeySize)) || len(blob) == 0 {
		t.Fatalf("GenerateDataKey = %d-byte key, %d-byte blob", len(key), len(blob))
	}
	got, err := c.Decrypt(ctx, f.keyID, blob, ec)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("Decrypt returned another key than GenerateDataKey")
	}
	// The key's ARN names it too.
	if got, err := c.Decrypt(ctx, "arn:aws:kms:"+testRegion+":"+testAccount+":key/"+f.keyID, blob, ec); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Decrypt by ARN: %v", err)
	}

	r1, err := c.GenerateRandom(ctx, MaxRandomSize)
	if err != nil {
		t.Fatalf("GenerateRandom: %v", err)
	}
	r2, err := c.GenerateRandom(ctx, 1)
	if err != nil {
		t.Fatalf("GenerateRandom(1): %v", err)
	}
	if len(r1) != MaxRandomSize || len(r2) != 1 || bytes.Equal(r1[:32], make([]byte, 32)) {
		t.Fatalf("GenerateRandom gave %d and %d bytes", len(r1), len(r2))
	}

	// Another context, another key, or another blob: KMS refuses, and the
	// refusal is not mistaken for the image being refused.
	for name, call := range map[string]func() error{
		"other context": func() error {
			_, err := c.Decrypt(ctx, f.keyID, blob, map[string]string{"nitrosign": "other"})
			return err
		},
		"no context": func() error { _, err := c.Decrypt(ctx, f.keyID, blob, nil); return err },
		"other key":  func() error { _, err := c.Decrypt(ctx, f.createKey(t, testImage.PCR0[:]), blob, ec); return err },
		"changed blob": func() error {
			b := bytes.Clone(blob)
			b[len(b)-1] ^= 1
			_, err := c.Decrypt(ctx, f.keyID, b, ec)
			return err
		},
	} {
		err := call()
		if err == nil || errors.Is(err, ErrAccessDenied) || !strings.HasPrefix(err.Error(), "kms: Decrypt: ") {
			t.Errorf("Decrypt with %s: %v", name, err)
		}
		if err != nil {
			noSecrets(t, "error", err.Error(), key)
		}
	}

	// Every operation attested a fresh RSA-2048 key with a fresh nonce.
	reqs := f.nsm.requests()
	if len(reqs) != 9 {
		t.Fatalf("%d attestations for 9 operations", len(reqs))
	}
	seenKeys, seenNonces := map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		pub, err := x509.ParsePKIXPublicKey(r.PublicKey)
		if err != nil {
			t.Fatalf("attestation %d: public_key is not a SubjectPublicKeyInfo: %v", i, err)
		}
		if k, ok := pub.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
			t.Fatalf("attestation %d: public_key is a %T, not RSA-2048", i, pub)
		}
		if len(r.Nonce) != nonceSize || r.UserData != nil {
			t.Errorf("attestation %d: nonce %d bytes, user data %x", i, len(r.Nonce), r.UserData)
		}
		if seenKeys[string(r.PublicKey)] || seenNonces[string(r.Nonce)] {
			t.Errorf("attestation %d reuses a key or a nonce", i)
		}
		seenKeys[string(r.PublicKey)], seenNonces[string(r.Nonce)] = true, true
	}
}

// TestThroughVsockProxy runs the production path: the default endpoint
// (kms.us-east-1.amazonaws.com, the name the certificate must carry),
// reached over the vsock simulator through a stand-in for vsock-proxy at
// CID 3, port 8000, that carries TCP bytes to the KMS listener. The proxy
// sees no plaintext.
func TestThroughVsockProxy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir, err := os.MkdirTemp("", "kv") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	parent := &transport.UnixVsock{Dir: dir, CID: transport.ParentCID}
	enclave := &transport.UnixVsock{Dir: dir, CID: transport.DefaultEnclaveCID}
	l, err := parent.Listen(DefaultProxyPort)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		carried bytes.Buffer
		wg      sync.WaitGroup
	)
	t.Cleanup(wg.Wait) // cleanups run last first: the listener is closed before
	t.Cleanup(func() { l.Close() })
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", f.simAddr)
			if err != nil {
				in.Close()
				continue
			}
			record := func(dst io.Writer, src io.Reader) {
				var buf [4096]byte
				for {
					n, err := src.Read(buf[:])
					if n > 0 {
						mu.Lock()
						carried.Write(buf[:n])
						mu.Unlock()
						dst.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}
			wg.Go(func() { record(out, in); out.Close() })
			wg.Go(func() { record(in, out); in.Close() })
		}
	})

	cfg := f.config(t)
	cfg.Endpoint = ""
	cfg.Dial = DialVsockProxy(enclave, transport.ParentCID, DefaultProxyPort)
	c := newClient(t, cfg)
	ctx := context.Background()
	key, blob, err := c.GenerateDataKey(ctx, f.keyID, nil)
	if err != nil {
		t.Fatalf("GenerateDataKey through the proxy: %v", err)
	}
	rnd, err := c.GenerateRandom(ctx, 64)
	if err != nil {
		t.Fatalf("GenerateRandom through the proxy: %v", err)
	}
	c.CloseIdleConnections()

	mu.Lock()
	seen := carried.String()
	mu.Unlock()
	if len(seen) < 1000 {
		t.Fatalf("the proxy carried %d bytes", len(seen))
	}
	for _, clear := range []string{"TrentService", "CiphertextForRecipient", "Authorization", enclaveIdentity.AccessKeyID} {
		if strings.Contains(seen, clear) {
			t.Errorf("the proxy saw %q in clear", clear)
		}
	}
	noSecrets(t, "the proxy's bytes", seen, key, blob, rnd)

	// Without vsock-proxy, the client fails cleanly.
	cfg.Dial = DialVsockProxy(enclave, transport.ParentCID, DefaultProxyPort+1)
	if _, err := newClient(t, cfg).GenerateRandom(ctx, 8); err == nil || !strings.Contains(err.Error(), "kms: vsock-proxy at vsock(3:8001)") {
		t.Errorf("GenerateRandom without a proxy: %v", err)
	}
}

// TestImageRefused: an enclave whose PCR0 the key policy (and the role's
// IAM policy, for GenerateRandom) does not name is refused with an
// AccessDeniedError.
func TestImageRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, blob, err := newClient(t, f.config(t)).GenerateDataKey(ctx, f.keyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t)
	cfg.NSM = f.other
	c := newClient(t, cfg)
	for _, tc := range []struct {
		op   string
		call func() error
		msg  string
	}{
		{"GenerateDataKey", func() error { _, _, err := c.GenerateDataKey(ctx, f.keyID, nil); return err }, "with an explicit deny in a resource-based policy"},
		{"Decrypt", func() error { _, err := c.Decrypt(ctx, f.keyID, blob, nil); return err }, "with an explicit deny in a resource-based policy"},
		{"GenerateRandom", func() error { _, err := c.GenerateRandom(ctx, 32); return err }, "no identity-based policy allows the kms:GenerateRandom action"},
	} {
		err := tc.call()
		var denied *AccessDeniedError
		if !errors.Is(err, ErrAccessDenied) || !errors.As(err, &denied) {
			t.Fatalf("%s by another image: %v, want an AccessDeniedError", tc.op, err)
		}
		if denied.Operation != tc.op || !strings.Contains(denied.Message, tc.msg) || !strings.Contains(denied.Message, enclaveIdentity.ARN) {
			t.Errorf("%s: %+v", tc.op, denied)
		}
		if !strings.HasPrefix(err.Error(), "kms: "+tc.op+": access denied: User: ") {
			t.Errorf("%s: error %q", tc.op, err)
		}
		d, ok := f.sim.LastDenial()
		if !ok || d.ImageSHA384 != hex.EncodeToString(otherImage.PCR0[:]) {
			t.Errorf("%s: the simulator's denial %+v", tc.op, d)
		}
	}
	// Refusals are not retried: one request each.
	if n := len(f.other.requests()); n != 3 {
		t.Errorf("%d attestations for 3 refused operations", n)
	}
}

// lyingKMS is a TLS server, trusted by the client, that forwards to the
// simulator and rewrites its answers with edit: it stands for a KMS that
// answers wrongly, which the TLS session keeps the host from doing.
func (f *fixture) lyingKMS(t *testing.T, edit func(target string, answer map[string]any)) Config {
	t.Helper()
	simURL, err := url.Parse(f.sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(simURL)
			r.Out.Host = r.In.Host // the host the request was signed for
		},
		Transport: f.sim.Client().Transport,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusOK {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var answer map[string]any
			if err := json.Unmarshal(body, &answer); err != nil {
				return err
			}
			_, op, _ := strings.Cut(resp.Request.Header.Get("X-Amz-Target"), ".")
			edit(op, answer)
			if body, err = json.Marshal(answer); err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewTLSServer(proxy)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := f.config(t)
	cfg.Endpoint = srv.URL
	cfg.Dial = f.dialTo(srv.Listener.Addr().String())
	cfg.RootCAs = pool
	return cfg
}

// envelope returns the CiphertextForRecipient of an answer.
func envelope(t *testing.T, answer map[string]any) []byte {
	t.Helper()
	s, _ := answer["CiphertextForRecipient"].(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Errorf("answer without a CiphertextForRecipient: %v", answer)
	}
	return b
}

func TestLyingAnswersRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, blob, err := newClient(t, f.config(t)).GenerateDataKey(ctx, f.keyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaked := bytes.Repeat([]byte{0x5a}, 32)
	flipEncryptedKey := func(t *testing.T, answer map[string]any) {
		b := envelope(t, answer)
		env, err := cms.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, env.EncryptedKey)
		b[i+100] ^= 0x01
		answer["CiphertextForRecipient"] = base64.StdEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, answer map[string]any)
		want string
		is   error
	}{
		{"a Plaintext field", func(t *testing.T, a map[string]any) { a["Plaintext"] = base64.StdEncoding.EncodeToString(leaked) }, "refusing an answer with a Plaintext field", nil},
		{"a Plaintext field without the envelope", func(t *testing.T, a map[string]any) {
			a["Plaintext"] = base64.StdEncoding.EncodeToString(leaked)
			delete(a, "CiphertextForRecipient")
		}, "refusing an answer with a Plaintext field", nil},
		{"no envelope", func(t *testing.T, a map[string]any) { delete(a, "CiphertextForRecipient") }, "without a CiphertextForRecipient", nil},
		{"a changed encrypted key", flipEncryptedKey, "CiphertextForRecipient: cms: decryption failed", cms.ErrDecryption},
		{"a truncated envelope", func(t *testing.T, a map[string]any) {
			b := envelope(t, a)
			a["CiphertextForRecipient"] = base64.StdEncoding.EncodeToString(b[:len(b)-20])
		}, "CiphertextForRecipient: cms: ", nil},
		{"an envelope for another key", func(t *testing.T, a map[string]any) {
			// Well formed, but the encrypted key is someone else's: a
			// recorded answer replayed.
			b := envelope(t, a)
			env, _ := cms.Parse(b)
			i := bytes.Index(b, env.EncryptedKey)
			copy(b[i:], bytes.Repeat([]byte{0x42}, len(env.EncryptedKey)))
			a["CiphertextForRecipient"] = base64.StdEncoding.EncodeToString(b)
		}, "cms: decryption failed", cms.ErrDecryption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, f.lyingKMS(t, func(_ string, a map[string]any) { tc.edit(t, a) }))
			for op, call := range map[string]func() ([]byte, error){
				"GenerateDataKey": func() ([]byte, error) { k, _, err := c.GenerateDataKey(ctx, f.keyID, nil); return k, err },
				"Decrypt":         func() ([]byte, error) { return c.Decrypt(ctx, f.keyID, blob, nil) },
				"GenerateRandom":  func() ([]byte, error) { return c.GenerateRandom(ctx, 32) },
			} {
				got, err := call()
				if err == nil || got != nil || !strings.HasPrefix(err.Error(), "kms: "+op+": ") || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %d bytes, error %v; want %q", op, len(got), err, tc.want)
					continue
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("%s: %v is not %v", op, err, tc.is)
				}
				noSecrets(t, op+" error", err.Error(), leaked)
			}
		})
	}

	// The client is right to trust nothing but the envelope: the same
	// proxy, answering honestly, works.
	c := newClient(t, f.lyingKMS(t, func(string, map[string]any) {}))
	if _, err := c.GenerateRandom(ctx, 16); err != nil {
		t.Fatalf("through an honest proxy: %v", err)
	}
}

// TestUntrustedCertificate: the host cannot stand in for KMS. A server
// whose certificate does not chain to RootCAs, or does not name the
// endpoint's host, is refused at once, without a retry.
func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	// A TLS server of the host's, with a CA of its own.
	mitm := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the client sent a request to an untrusted server")
	}))
	mitm.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(mitm.Close)
	hostCA := x509.NewCertPool()
	hostCA.AddCert(mitm.Certificate())

	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"the host's server, our roots", func(cfg *Config) { cfg.Dial = f.dialTo(mitm.Listener.Addr().String()) }},
		{"KMS, the host's roots", func(cfg *Config) { cfg.RootCAs = hostCA }},
		{"KMS, an empty pool", func(cfg *Config) { cfg.RootCAs = x509.NewCertPool() }},
		{"a certificate for another name", func(cfg *Config) { cfg.Endpoint = "https://kms.eu-west-1.amazonaws.com" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.dials.Store(0)
			cfg := f.config(t)
			tc.edit(&cfg)
			_, err := newClient(t, cfg).GenerateRandom(ctx, 16)
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) || !strings.HasPrefix(err.Error(), "kms: GenerateRandom: ") || !strings.Contains(err.Error(), "is not trusted") {
				t.Fatalf("err = %v, want a certificate verification error", err)
			}
			if n := f.dials.Load(); n != 1 {
				t.Errorf("%d connections: a refused certificate must not be retried", n)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	// Capture what the standard loggers print during the test.
	var logs bytes.Buffer
	var logMu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	oldSlog, oldLog := slog.Default(), log.Writer()
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.SetOutput(w)
	t.Cleanup(func() { slog.SetDefault(oldSlog); log.SetOutput(oldLog) })

	f := newFixture(t)
	ctx := context.Background()
	clock := time.Now()
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }

	p := NewPushedCredentials(now)
	cfg := f.config(t)
	cfg.Credentials = p
	c := newClient(t, cfg)
	var errs []string

	// Nothing pushed yet.
	_, err := c.GenerateRandom(ctx, 8)
	if !errors.Is(err, ErrNoCredentials) || err.Error() != "kms: GenerateRandom: no credentials: the host has not pushed any" {
		t.Errorf("without credentials: %v", err)
	}
	errs = append(errs, fmt.Sprint(err))

	// Refused pushes keep what was there.
	for _, tc := range []struct {
		name string
		c    aws.Credentials
		want string
	}{
		{"expired", enclaveCredentials(clock.Add(-time.Second)), "kms: credentials expired at "},
		{"expiring now", enclaveCredentials(clock), "kms: credentials expired at "},
		{"no secret", aws.Credentials{AccessKeyID: "AKIAEXAMPLE", CanExpire: true, Expires: clock.Add(time.Hour)}, "without an access key id or secret"},
		{"no key id", aws.Credentials{SecretAccessKey: enclaveSecret}, "without an access key id or secret"},
		{"no expiry", aws.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: enclaveSecret, SessionToken: enclaveToken}, "without an expiry"},
		{"zero expiry", aws.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: enclaveSecret, CanExpire: true}, "no expiry time"},
	} {
		err := p.Set(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%s) = %v, want %q", tc.name, err, tc.want)
		}
		errs = append(errs, fmt.Sprint(err))
	}
	if err := p.Set(enclaveCredentials(clock.Add(-time.Minute))); !errors.Is(err, ErrCredentialsExpired) {
		t.Errorf("Set(expired) = %v, want ErrCredentialsExpired", err)
	}
	if _, err := p.Retrieve(ctx); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("a refused Set changed the credentials: %v", err)
	}

	// Fresh credentials work, until their expiry passes.
	if err := p.Set(enclaveCredentials(clock.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateRandom(ctx, 8); err != nil {
		t.Fatalf("with fresh credentials: %v", err)
	}
	attested, dialed := len(f.nsm.requests()), f.dials.Load()
	advance(time.Hour)
	_, err = c.GenerateRandom(ctx, 8)
	if !errors.Is(err, ErrCredentialsExpired) || !strings.Contains(err.Error(), "the host must push fresh ones") {
		t.Errorf("with expired credentials: %v", err)
	}
	errs = append(errs, fmt.Sprint(err))
	if len(f.nsm.requests()) != attested || f.dials.Load() != dialed {
		t.Error("an operation with expired credentials attested a key or connected to KMS")
	}
	// New ones pushed: it works again.
	if err := p.Set(enclaveCredentials(clock.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateRandom(ctx, 8); err != nil {
		t.Fatalf("with renewed credentials: %v", err)
	}

	// Credentials KMS does not accept: KMS's error, without the secret.
	wrong := enclaveCredentials(clock.Add(time.Hour))
	wrong.SecretAccessKey = enclaveSecret + "-but-wrong"
	if err := p.Set(wrong); err != nil {
		t.Fatal(err)
	}
	_, err = c.GenerateRandom(ctx, 8)
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("with a wrong secret: %v", err)
	}
	errs = append(errs, fmt.Sprint(err))

	// Printing the provider shows no secret either.
	errs = append(errs, fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p))
	if s := p.String(); !strings.HasPrefix(s, "kms.PushedCredentials{expires ") {
		t.Errorf("String() = %q", s)
	}
	for _, e := range errs {
		noSecrets(t, "error or string", e)
		if !strings.HasPrefix(e, "kms") {
			t.Errorf("%q does not start with kms", e)
		}
	}
	logMu.Lock()
	noSecrets(t, "log output", logs.String())
	logMu.Unlock()
}

// TestOtherProviders: any aws.CredentialsProvider works, and expired
// credentials from one are refused before anything else happens.
func TestOtherProviders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cfg := f.config(t)
	cfg.Credentials = credentials.NewStaticCredentialsProvider(enclaveIdentity.AccessKeyID, enclaveSecret, enclaveToken)
	if _, err := newClient(t, cfg).GenerateRandom(ctx, 8); err != nil {
		t.Fatalf("with a static provider: %v", err)
	}
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return enclaveCredentials(time.Now().Add(-time.Minute)), nil
	})
	attested := len(f.nsm.requests())
	_, err := newClient(t, cfg).GenerateRandom(ctx, 8)
	if !errors.Is(err, ErrCredentialsExpired) || !strings.HasPrefix(err.Error(), "kms: GenerateRandom: credentials expired at ") {
		t.Errorf("with expired credentials: %v", err)
	}
	if len(f.nsm.requests()) != attested {
		t.Error("an operation with expired credentials attested a key")
	}
	noSecrets(t, "error", fmt.Sprint(err))
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// TestConcurrent runs operations of one client in parallel under -race.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := newClient(t, f.config(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			key, blob, err := c.GenerateDataKey(ctx, f.keyID, nil)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := c.Decrypt(ctx, f.keyID, blob, nil)
			if err != nil || !bytes.Equal(got, key) {
				t.Errorf("Decrypt: %v", err)
			}
		})
	}
	wg.Go(func() {
		p := f.creds
		for range 20 {
			p.Set(enclaveCredentials(time.Now().Add(time.Hour)))
			p.Retrieve(ctx)
			_ = p.String()
		}
	})
	wg.Wait()
}

func TestRecipientDestroy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := newClient(t, f.config(t))
	r, err := c.newRecipient(context.Background(), "Test")
	if err != nil {
		t.Fatal(err)
	}
	k := r.key
	res, err := attestation.Verify(r.info.AttestationDocument, attestation.Options{Time: time.Now(), Roots: nil, AllowDebug: true})
	if err == nil || res != nil {
		t.Fatal("a simulated document verified against the AWS root")
	}
	if string(r.info.KeyEncryptionAlgorithm) != "RSAES_OAEP_SHA_256" {
		t.Errorf("key encryption algorithm %q", r.info.KeyEncryptionAlgorithm)
	}
	r.destroy()
	r.destroy() // twice is harmless
	if r.key != nil {
		t.Error("the key is still referenced")
	}
	for i, x := range append(k.Primes, k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv) {
		if x.Sign() != 0 || len(x.Bits()) != 0 {
			t.Errorf("private value %d not zeroed", i)
		}
		for _, w := range x.Bits()[:cap(x.Bits())] {
			if w != 0 {
				t.Errorf("private value %d: a word of its memory is not zeroed", i)
				break
			}
		}
	}
}

func TestArgumentsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := newClient(t, f.config(t))
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"GenerateDataKey without a key": func() error { _, _, err := c.GenerateDataKey(ctx, "", nil); return err },
		"Decrypt without a key":         func() error { _, err := c.Decrypt(ctx, "", []byte{1}, nil); return err },
		"Decrypt without a blob":        func() error { _, err := c.Decrypt(ctx, f.keyID, nil, nil); return err },
		"GenerateRandom(0)":             func() error { _, err := c.GenerateRandom(ctx, 0); return err },
		"GenerateRandom(1025)":          func() error { _, err := c.GenerateRandom(ctx, 1025); return err },
	} {
		if err := call(); err == nil || !strings.HasPrefix(err.Error(), "kms: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(f.nsm.requests()) != 0 || f.dials.Load() != 0 {
		t.Error("a refused call attested or connected")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GenerateRandom(cancelled, 8); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no region", func(c *Config) { c.Region = "" }, "region"},
		{"bad region", func(c *Config) { c.Region = "us-east-1/../x" }, "region"},
		{"no dial", func(c *Config) { c.Dial = nil }, "Dial"},
		{"no credentials", func(c *Config) { c.Credentials = nil }, "Credentials"},
		{"no NSM", func(c *Config) { c.NSM = nil }, "NSM"},
		{"http", func(c *Config) { c.Endpoint = "http://kms.us-east-1.amazonaws.com" }, "want https://HOST"},
		{"a path", func(c *Config) { c.Endpoint = "https://kms.us-east-1.amazonaws.com/x" }, "want https://HOST"},
		{"a query", func(c *Config) { c.Endpoint = "https://kms.us-east-1.amazonaws.com?x=1" }, "want https://HOST"},
		{"user info", func(c *Config) { c.Endpoint = "https://u:p@kms.us-east-1.amazonaws.com" }, "want https://HOST"},
		{"no host", func(c *Config) { c.Endpoint = "https://" }, "want https://HOST"},
	} {
		cfg := f.config(t)
		tc.edit(&cfg)
		if c, err := New(cfg); err == nil || c != nil || !strings.HasPrefix(err.Error(), "kms: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, %v; want an error with %q", tc.name, c, err, tc.want)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		raw, region, url, addr, name string
	}{
		{"", "us-east-1", "https://kms.us-east-1.amazonaws.com", "kms.us-east-1.amazonaws.com:443", "kms.us-east-1.amazonaws.com"},
		{"", "cn-north-1", "https://kms.cn-north-1.amazonaws.com.cn", "kms.cn-north-1.amazonaws.com.cn:443", "kms.cn-north-1.amazonaws.com.cn"},
		{"https://127.0.0.1:8443/", "us-east-1", "https://127.0.0.1:8443", "127.0.0.1:8443", "127.0.0.1"},
		{"https://[::1]:8443", "us-east-1", "https://[::1]:8443", "[::1]:8443", "::1"},
		{"https://kms-fips.us-east-1.amazonaws.com", "us-east-1", "https://kms-fips.us-east-1.amazonaws.com", "kms-fips.us-east-1.amazonaws.com:443", "kms-fips.us-east-1.amazonaws.com"},
	} {
		ep, err := parseEndpoint(tc.raw, tc.region)
		if err != nil || ep.url != tc.url || ep.addr != tc.addr || ep.serverName != tc.name {
			t.Errorf("parseEndpoint(%q, %q) = %+v, %v", tc.raw, tc.region, ep, err)
		}
	}
}

// TestDialOnlyTheEndpoint: the transport connects to the endpoint's
// address only, and never without TLS.
func TestDialOnlyTheEndpoint(t *testing.T) {
	d := &dialer{addr: "kms.us-east-1.amazonaws.com:443", dial: func(context.Context) (net.Conn, error) {
		t.Error("dialed")
		return nil, errors.New("no")
	}}
	if _, err := d.dialTLS(context.Background(), "tcp", "evil.example:443"); err == nil || !strings.Contains(err.Error(), "refusing to connect to evil.example:443") {
		t.Errorf("dialTLS to another address: %v", err)
	}
	if _, err := refusePlaintext(context.Background(), "tcp", "kms.us-east-1.amazonaws.com:80"); err == nil {
		t.Error("a plaintext connection was allowed")
	}
}
