package main

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/internal/buildinfo"
)

const enclavePkg = "github.com/nitrosign/nitrosign/cmd/nitrosign-enclave"

// forbidden matches packages outside the standard library that the enclave
// binary must never link: the host, simulators, the dev stack, the client
// library, the load generator, and anything for tests (fuzzseed writes fuzz
// corpus files for tests, testgen generates random test inputs).
var forbidden = regexp.MustCompile(`(^|/)(host|client|devstack|loadgen|fuzzseed|testgen|[a-z]*sim|[a-z]*test|testing)(/|$)`)

// forbiddenStd matches the standard library's test packages. (The standard
// library's internal/synctest is not one: package sync imports it, so every
// Go program links it.)
var forbiddenStd = regexp.MustCompile(`^(testing(/|$)|net/http/httptest$|internal/testenv$|testing/)`)

// allowedThirdParty lists the only modules outside the standard library and
// this module that the enclave may link.
var allowedThirdParty = []string{
	"github.com/decred/dcrd/dcrec/secp256k1/v4",
	"github.com/fxamacker/cbor/v2",
	"github.com/hf/nsm",
	"github.com/x448/float16",
	"github.com/mdlayher/vsock",
	"github.com/mdlayher/socket",
	"golang.org/x/sys/",
	"golang.org/x/crypto/",
	// Ed25519 arithmetic for stamp's verification with decoded client
	// keys kept between requests: the upstream of the standard library's
	// own copy, which crypto/ed25519 does not expose.
	"filippo.io/edwards25519/",
	"golang.org/x/net/",
	"golang.org/x/sync/",
	// KMS: the AWS SDK's KMS client (SigV4, retries, the JSON protocol)
	// and its smithy runtime; the enclave's own TLS and Recipient code is
	// in package kms.
	"github.com/aws/aws-sdk-go-v2/",
	"github.com/aws/smithy-go/",
}

// sharedWithEnclave lists the packages of this module outside enclave/ that
// the enclave links: the formats and decoders both sides of the boundary
// use (docs/architecture.md). Every other package of the module it links
// must be under enclave/; a new shared dependency is a decision, made here.
var sharedWithEnclave = map[string]bool{
	"admin": true, "api": true, "api/refusal": true, "api/request": true,
	"attestation/userdata": true, "audit": true, "calldata": true,
	"ethmsg": true, "ethtx": true, "genesis": true, "keypath": true,
	"policy": true, "policy/stateful": true, "proto": true, "stamp": true, "summary": true,
	"transport": true, "internal/buildinfo": true, "internal/logging": true, "internal/rlp": true,
	"internal/strictcbor": true, "internal/strictjson": true,
}

func TestEnclaveDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", enclavePkg).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 20 {
		t.Fatalf("go list -deps gave only %d packages; the check would prove nothing", len(lines))
	}
	for _, line := range lines {
		d, std, _ := strings.Cut(line, " ")
		if std == "true" {
			if forbiddenStd.MatchString(d) {
				t.Errorf("the enclave links the standard library's test package %s", d)
			}
			continue
		}
		if forbidden.MatchString(d) {
			t.Errorf("the enclave links %s (host, simulator and test packages must stay out)", d)
		}
		if rel, ok := strings.CutPrefix(d, "github.com/nitrosign/nitrosign/"); ok {
			if rel != "enclave" && !strings.HasPrefix(rel, "enclave/") && !strings.HasPrefix(rel, "cmd/nitrosign-enclave") && !sharedWithEnclave[rel] {
				t.Errorf("the enclave links %s, which is neither under enclave/ nor a shared format it may link (sharedWithEnclave)", d)
			}
			continue
		}
		ok := false
		for _, p := range allowedThirdParty {
			if strings.HasPrefix(d, p) || d == strings.TrimSuffix(p, "/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the enclave links %s, a module not on its allowlist", d)
		}
	}
}

func TestForbiddenPattern(t *testing.T) {
	// The check above must be able to fail.
	for _, bad := range []string{
		"github.com/nitrosign/nitrosign/host",
		"github.com/nitrosign/nitrosign/internal/sim/vsocksim",
		"github.com/nitrosign/nitrosign/internal/devstack",
		"github.com/nitrosign/nitrosign/client",
		"github.com/nitrosign/nitrosign/internal/sim/kmssim",
		"github.com/nitrosign/nitrosign/internal/nsmtest",
		"github.com/nitrosign/nitrosign/internal/fuzzseed",
		"github.com/nitrosign/nitrosign/internal/abitest",
		"github.com/nitrosign/nitrosign/internal/testgen",
		"github.com/nitrosign/nitrosign/internal/devstack/devstacktest",
	} {
		if !forbidden.MatchString(bad) {
			t.Errorf("forbidden pattern misses %s", bad)
		}
	}
	for _, bad := range []string{"testing", "testing/iotest", "net/http/httptest", "internal/testenv"} {
		if !forbiddenStd.MatchString(bad) {
			t.Errorf("standard-library pattern misses %s", bad)
		}
	}
	for _, good := range []string{"internal/synctest", "internal/testlog", "net/http", "crypto/ecdsa"} {
		if forbiddenStd.MatchString(good) {
			t.Errorf("standard-library pattern wrongly matches %s", good)
		}
	}
	for _, good := range []string{"github.com/nitrosign/nitrosign/enclave", "github.com/nitrosign/nitrosign/proto", "crypto/sha256"} {
		if forbidden.MatchString(good) {
			t.Errorf("forbidden pattern wrongly matches %s", good)
		}
	}
}

func buildEnclave(t *testing.T, out string, env ...string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, enclavePkg)
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// TestEnclaveBuildReproducibleAndStatic builds the enclave twice, the second
// time with an empty build cache so that nothing is shared between the two
// but the source and the toolchain, and checks the two binaries are
// byte-identical and statically linked.
func TestEnclaveBuildReproducibleAndStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping two enclave builds in -short mode")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "nitrosign-enclave"), filepath.Join(dir, "b", "nitrosign-enclave")
	buildEnclave(t, a)
	buildEnclave(t, b, "GOCACHE="+filepath.Join(dir, "cache"))
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Fatalf("two builds differ (%d and %d bytes): the enclave build is not reproducible", len(ab), len(bb))
	}
	if runtime.GOOS != "linux" {
		return
	}
	f, err := elf.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("enclave binary has a %v program header: not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("enclave binary needs shared libraries %v", libs)
	}
	if bytes.Contains(ab, []byte(os.Getenv("HOME")+"/")) && os.Getenv("HOME") != "" {
		t.Errorf("enclave binary holds the builder's home directory: -trimpath did not apply")
	}
}

// TestVersionAgrees keeps one version: what the enclave attests and
// reports in health (enclave.Version) is the default version of every
// binary (buildinfo.DefaultVersion).
func TestVersionAgrees(t *testing.T) {
	if enclave.Version != buildinfo.DefaultVersion {
		t.Fatalf("enclave.Version %q, buildinfo.DefaultVersion %q: bump both", enclave.Version, buildinfo.DefaultVersion)
	}
}

// TestEnclaveVersion builds the enclave as `make enclave` does and checks
// that -version prints the attested version, an unknown commit (the build
// records none: -buildvcs=false), the Go version, and the flags of the
// reproducible, static build as the build info records them (the toolchain
// leaves -ldflags out of a -trimpath build's record: it may hold paths);
// and that -h prints the flags and exits 0.
func TestEnclaveVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping an enclave build in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "nitrosign-enclave")
	buildEnclave(t, bin)
	for _, arg := range []string{"-version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{
			"nitrosign-enclave " + enclave.Version + "\n",
			"commit  unknown\n",
			"go      " + runtime.Version() + "\n",
			"build   CGO_ENABLED=0\n",
			"build   -trimpath=true\n",
			"build   GOOS=" + runtime.GOOS + "\n",
			"build   GOARCH=" + runtime.GOARCH + "\n",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s printed\n%s\nwithout %q", arg, out, want)
			}
		}
	}
	for _, arg := range []string{"-h", "--help"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-genesis") || !strings.Contains(string(out), "-version") {
			t.Errorf("%s: %v\n%s", arg, err, out)
		}
	}
}
