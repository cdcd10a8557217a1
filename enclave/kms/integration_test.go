package kms

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/transport"
)

// TestIntegrationKMS runs the three operations against real AWS KMS, from
// inside a Nitro enclave (real /dev/nsm, vsock-proxy on the parent). It
// skips unless these are set:
//
//	NITROSIGN_KMS_KEY_ID      a key whose policy is `nitrosign kms-policy`'s for this image
//	AWS_REGION                the key's region
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
//	                          the parent role's credentials
//	NITROSIGN_KMS_ROOTS       a PEM file of the roots KMS chains to (Amazon Root CA 1..4),
//	                          until the embedded roots are linked
//
// and optionally NITROSIGN_KMS_PROXY_PORT (default 8000), the port of
// `vsock-proxy 8000 kms.REGION.amazonaws.com 443` on the parent.
func TestIntegrationKMS(t *testing.T) {
	keyID, region := os.Getenv("NITROSIGN_KMS_KEY_ID"), os.Getenv("AWS_REGION")
	akid, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	rootsFile := os.Getenv("NITROSIGN_KMS_ROOTS")
	if keyID == "" || region == "" || akid == "" || secret == "" || rootsFile == "" {
		t.Skip("set NITROSIGN_KMS_KEY_ID, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN) " +
			"and NITROSIGN_KMS_ROOTS, and run inside a Nitro enclave with vsock-proxy on the parent, to test against AWS KMS")
	}
	device, err := nsm.Open()
	if err != nil {
		t.Skipf("no Nitro Security Module (%v): run inside a Nitro enclave", err)
	}
	t.Cleanup(func() { device.Close() })
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", rootsFile)
	}
	port := DefaultProxyPort
	if p := os.Getenv("NITROSIGN_KMS_PROXY_PORT"); p != "" {
		v, err := transport.ParseCID(p) // a uint32, as a CID is
		if err != nil {
			t.Fatalf("NITROSIGN_KMS_PROXY_PORT: %v", err)
		}
		port = v
	}
	creds := NewPushedCredentials(nil)
	c := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
	if c.SessionToken != "" {
		// The environment does not say when they expire; the test is short.
		c.CanExpire, c.Expires = true, time.Now().Add(15*time.Minute)
	}
	if err := creds.Set(c); err != nil {
		t.Fatal(err)
	}
	client, err := New(Config{
		Region:      region,
		Dial:        DialVsockProxy(transport.Vsock(), transport.ParentCID, port),
		RootCAs:     roots,
		Credentials: creds,
		NSM:         device,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ec := map[string]string{"nitrosign": "integration-test"}
	key, blob, err := client.GenerateDataKey(ctx, keyID, ec)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	got, err := client.Decrypt(ctx, keyID, blob, ec)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Decrypt: %v", err)
	}
	rnd, err := client.GenerateRandom(ctx, 64)
	if err != nil || len(rnd) != 64 {
		t.Fatalf("GenerateRandom: %v", err)
	}
}
