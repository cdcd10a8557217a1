package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/internal/sim/kmssim"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/kmspolicy"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// Files of the simulated KMS in the data directory. The state file holds
// the simulated key's secret in clear: development only.
const (
	KMSStateFile  = "kms-state.json"
	KMSCACertFile = "kms-ca.pem"
	KMSCAKeyFile  = "kms-ca.key"
)

// kmsAccount is the AWS account the simulated KMS plays: its id, region,
// the TLS server name the enclave checks (the real endpoint's, so that a
// genesis configuration differs from a production one only in the root it
// trusts), and the parent instance's role, which the key policy names.
type kmsAccount struct {
	ID, Region, ServerName, Principal string
}

// devAccount is the simulated KMS's account for the dev genesis.
var devAccount = kmsAccount{
	ID:         kmssim.DefaultAccountID,
	Region:     kmssim.DefaultRegion,
	ServerName: "kms." + kmssim.DefaultRegion + ".amazonaws.com",
	Principal:  kmssim.DefaultPrincipal,
}

// loadOrCreateKMSCA returns the simulated KMS's TLS CA, made at the first
// run and kept in the data directory, since the genesis configuration (and
// with it the measurement) names it.
func loadOrCreateKMSCA(dir string) (tls.Certificate, []byte, error) {
	certPath, keyPath := filepath.Join(dir, KMSCACertFile), filepath.Join(dir, KMSCAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		var keyPEM []byte
		if certPEM, keyPEM, err = kmssim.NewCA(); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
			return tls.Certificate{}, nil, err
		}
	} else if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("devstack: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("devstack: %w", err)
	}
	ca, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("devstack: %s: %w", certPath, err)
	}
	return ca, certPEM, nil
}

// newKMSSim starts the simulated KMS on the data directory's state.
func newKMSSim(dir string, acct kmsAccount, ca tls.Certificate, roots []*x509.Certificate) (*kmssim.Server, error) {
	id := kmssim.DefaultIdentity()
	id.ARN = acct.Principal
	srv, err := kmssim.New(kmssim.Options{
		StatePath:  filepath.Join(dir, KMSStateFile),
		CA:         &ca,
		Hosts:      []string{acct.ServerName},
		Roots:      roots,
		AccountID:  acct.ID,
		Region:     acct.Region,
		Identities: []kmssim.Identity{id},
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: simulated KMS: %w", err)
	}
	return srv, nil
}

// adminClient is the AWS SDK's KMS client, as the account's administrator,
// talking to srv.
func adminClient(srv *kmssim.Server, acct kmsAccount) *awskms.Client {
	return awskms.NewFromConfig(aws.Config{
		Region:      acct.Region,
		Credentials: credentials.NewStaticCredentialsProvider(kmssim.DefaultAccessKeyID, kmssim.DefaultSecretAccessKey, ""),
		HTTPClient:  srv.Client(),
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
}

// createSealingKey creates the dev stack's sealing key in the simulated
// KMS (kept in its state file) and returns its ARN.
func createSealingKey(ctx context.Context, dir string, ca tls.Certificate) (string, error) {
	srv, err := newKMSSim(dir, devAccount, ca, nil)
	if err != nil {
		return "", err
	}
	defer srv.Close()
	out, err := adminClient(srv, devAccount).CreateKey(ctx, &awskms.CreateKeyInput{
		Description: aws.String("nitrosign dev stack: seals the enclave's seed"),
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		return "", fmt.Errorf("devstack: creating the simulated KMS key: %w", err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// withKMS returns the genesis configuration doc with a kms section naming keyARN and trusting
// the simulated KMS's CA, and the dev admin set.
func withKMS(doc []byte, keyARN string, caPEM []byte, admins json.RawMessage) ([]byte, error) {
	var g genesis.Config
	if err := json.Unmarshal(doc, &g); err != nil {
		return nil, fmt.Errorf("devstack: genesis: %w", err)
	}
	g.KMS = &genesis.KMS{Region: kmssim.DefaultRegion, KeyID: keyARN, RootCAPEM: string(caPEM)}
	g.Admins = admins
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	return append(b, '\n'), nil
}

// genesisKMS returns the kms section of the genesis at path, or nil.
func genesisKMS(path string) (*genesis.KMS, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	g, _, err := genesis.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("devstack: %s: %w", path, err)
	}
	return g.KMS, nil
}

// putImagePolicy sets the key policy that releases the key to the image
// measured m only, as `nitrosign kms-policy` prints it for AWS.
func putImagePolicy(ctx context.Context, srv *kmssim.Server, acct kmsAccount, keyARN string, m nsmsim.Measurement) error {
	pol, err := kmspolicy.KeyPolicy(kmspolicy.Options{PCR0: [][]byte{m.PCR0[:]}, Account: acct.ID, Role: acct.Principal})
	if err != nil {
		return err
	}
	_, err = adminClient(srv, acct).PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(keyARN), Policy: aws.String(string(pol)), PolicyName: aws.String("default")})
	if err != nil {
		return fmt.Errorf("devstack: setting the simulated key policy: %w", err)
	}
	return nil
}

// policyNamesImage reports whether the key's policy is already one that
// names an image, kmspolicy.KeyPolicy's (a first run's key has the simulator's
// default policy, which names none).
func policyNamesImage(ctx context.Context, srv *kmssim.Server, acct kmsAccount, keyARN string) (bool, error) {
	out, err := adminClient(srv, acct).GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return false, fmt.Errorf("devstack: reading the simulated key policy: %w", err)
	}
	return strings.Contains(aws.ToString(out.Policy), `"Id": "nitrosign-sealing-key"`), nil
}

// denialError explains a KMS refusal to unseal: the image changed.
func denialError(d kmssim.Denial, ok bool, m nsmsim.Measurement, enclaveMsg string) error {
	var b strings.Builder
	b.WriteString("devstack: KMS refused to unseal the enclave's seed, as AWS KMS would")
	if ok {
		fmt.Fprintf(&b, ": %s %s", "AccessDeniedException:", d.Message)
		if len(d.Expected) > 0 {
			fmt.Fprintf(&b, "\n  the key policy releases the key to images with PCR0 %s", strings.Join(d.Expected, " or "))
		}
		if d.PCR0 != "" {
			fmt.Fprintf(&b, "\n  this enclave image measures      PCR0 %s", d.PCR0)
		}
	} else {
		fmt.Fprintf(&b, ": %s\n  this enclave image measures PCR0 %s", enclaveMsg, hex.EncodeToString(m.PCR0[:]))
	}
	b.WriteString("\n  the enclave binary or genesis.json changed since the seed was sealed. Nothing was overwritten: the sealed seed is kept." +
		"\n  If the change is intended, run again with --accept-new-image (make dev DEV_FLAGS=--accept-new-image): it updates the simulated key policy to this image, as an admin would in AWS (PutKeyPolicy).")
	return errors.New(b.String())
}

// vsockProxy is the dev stack's vsock-proxy: it accepts the enclave's
// connections on the parent's vsock port and carries their bytes to the
// simulated KMS over TCP, as vsock-proxy carries them to KMS on EC2. It
// sees only TLS records.
type vsockProxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func startVsockProxy(t transport.Transport, port uint32, target string) (*vsockProxy, error) {
	l, err := t.Listen(port)
	if err != nil {
		return nil, fmt.Errorf("devstack: vsock-proxy: %w", err)
	}
	p := &vsockProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *vsockProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *vsockProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *vsockProxy) forward(c net.Conn) {
	defer c.Close()
	if !p.track(c, true) {
		return
	}
	defer p.track(c, false)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up, true) {
		return
	}
	defer p.track(up, false)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Close stops accepting and closes every connection.
func (p *vsockProxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// Dev admins: two Ed25519 keys, both needed (quorum 2), as a production
// deployment would need several people.
const (
	AdminCount  = 2
	AdminQuorum = 2
)

// AdminKeyFile is the file of dev admin i (1-based) in the data directory.
func AdminKeyFile(i int) string { return fmt.Sprintf("admin-%d.pem", i) }

// AdminName is the name of dev admin i (1-based) in the admin set.
func AdminName(i int) string { return fmt.Sprintf("dev-admin-%d", i) }

// ensureKeys makes the dev keys of files that are missing (Ed25519) and
// returns their public keys.
func ensureKeys(dir string, files []string) ([]stamp.PublicKey, error) {
	var out []stamp.PublicKey
	for _, f := range files {
		path := filepath.Join(dir, f)
		pemBytes, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			s, gerr := stamp.GenerateSigner(stamp.Ed25519)
			if gerr != nil {
				return nil, fmt.Errorf("devstack: %w", gerr)
			}
			if pemBytes, err = stamp.MarshalPrivateKeyPEM(s); err != nil {
				return nil, fmt.Errorf("devstack: %w", err)
			}
			if err := writeFileAtomic(path, pemBytes, 0o600); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		s, err := stamp.ParseSignerPEM(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("devstack: %s: %w", path, err)
		}
		out = append(out, s.PublicKey())
	}
	return out, nil
}

// ApproverCount is how many dev approvers the dev stack makes.
const ApproverCount = 2

// ensureAdmins makes the dev admin keys that are missing and returns the
// admin set's configuration naming them.
func ensureAdmins(dir string) (json.RawMessage, error) {
	type member struct {
		Name      string `json:"name"`
		Scheme    string `json:"scheme"`
		PublicKey string `json:"public_key"`
	}
	var members []member
	for i := 1; i <= AdminCount; i++ {
		path := filepath.Join(dir, AdminKeyFile(i))
		pemBytes, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			s, gerr := stamp.GenerateSigner(stamp.Ed25519)
			if gerr != nil {
				return nil, fmt.Errorf("devstack: %w", gerr)
			}
			if pemBytes, err = stamp.MarshalPrivateKeyPEM(s); err != nil {
				return nil, fmt.Errorf("devstack: %w", err)
			}
			if err := writeFileAtomic(path, pemBytes, 0o600); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		s, err := stamp.ParseSignerPEM(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("devstack: %s: %w", path, err)
		}
		members = append(members, member{Name: AdminName(i), Scheme: string(s.PublicKey().Scheme), PublicKey: hex.EncodeToString(s.PublicKey().Key)})
	}
	return json.Marshal(map[string]any{"members": members, "quorum": AdminQuorum})
}
