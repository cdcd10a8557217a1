package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
)

// AWSRootG1Fingerprint is the SHA-256 fingerprint of the DER encoding of
// the AWS Nitro Enclaves root certificate G1, in upper-case hex, as AWS
// publishes it ("Verifying the root of trust" in the Nitro Enclaves user
// guide). The certificate below is checked against it when the package is
// initialised.
const AWSRootG1Fingerprint = "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"

// awsRootG1PEM is the AWS Nitro Enclaves root certificate G1
// (CN=aws.nitro-enclaves, O=Amazon, OU=AWS, C=US; ECDSA P-384; valid from
// 2019-10-28 to 2049-10-28), from
// https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip, a
// copy of testdata/aws/nitro/aws_nitro_enclaves_root_g1.pem.
const awsRootG1PEM = `
-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
`

// awsRootG1DER is the DER of the root G1, checked against its fingerprint.
var awsRootG1DER = mustPinnedDER(awsRootG1PEM, AWSRootG1Fingerprint)

// awsRootG1 is the parsed root G1, the default of [Options.Roots]. It is
// never handed out: [AWSRootG1] returns a fresh copy.
var awsRootG1 = mustParse(awsRootG1DER)

// AWSRootG1 returns the AWS Nitro Enclaves root certificate G1, the root
// [Verify] trusts by default, whose SHA-256 fingerprint was checked against
// [AWSRootG1Fingerprint] when the package was initialised. Each call
// returns a new copy.
func AWSRootG1() *x509.Certificate {
	return mustParse(awsRootG1DER)
}

// mustPinnedDER decodes the one PEM certificate in text and panics unless
// the SHA-256 of its DER is fingerprint (hex, any case).
func mustPinnedDER(text, fingerprint string) []byte {
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		panic("attestation: the embedded root is not one PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, fingerprint) {
		panic(fmt.Sprintf("attestation: the embedded root has SHA-256 fingerprint %s, want %s", got, fingerprint))
	}
	return block.Bytes
}

// mustParse parses a copy of a certificate embedded in the package (a
// parsed certificate's fields alias the DER it was parsed from).
func mustParse(der []byte) *x509.Certificate {
	cert, err := x509.ParseCertificate(bytes.Clone(der))
	if err != nil {
		panic("attestation: the embedded root does not parse: " + err.Error())
	}
	return cert
}
