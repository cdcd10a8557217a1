package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/nitrosign/nitrosign"

// A layer is where a package sits relative to the trust boundary.
type layer int

const (
	shared      layer = iota // formats and libraries both sides use
	inside                   // runs only in the enclave: enclave/...
	outside                  // the host daemon
	sim                      // simulators of AWS and Nitro: internal/sim/...
	harness                  // the dev stack, chaos, the load generator
	tool                     // binaries: cmd/...
	testSupport              // test support, imported by tests only
)

var layerNames = map[layer]string{shared: "shared", inside: "enclave", outside: "host", sim: "simulator", harness: "harness", tool: "binary", testSupport: "test support"}

// layerOf places a package (its path relative to the module).
func layerOf(p string) layer {
	under := func(dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	switch {
	case strings.HasSuffix(p[strings.LastIndex(p, "/")+1:], "test"):
		// devstacktest, nsmwiretest and the like: helpers of tests.
		return testSupport
	case under("enclave"):
		return inside
	case under("host"):
		return outside
	case under("internal/sim"):
		return sim
	case under("internal/testgen"), under("internal/abitest"),
		under("internal/fuzzseed"), under("internal/docscheck"), under("internal/layout"), under("internal/runbook"):
		return testSupport
	case under("internal/devstack"), under("internal/chaos"), under("internal/loadgen"), under("internal/floor"):
		return harness
	case under("cmd"), under("scripts"):
		return tool
	}
	return shared
}

// allowed reports whether package from may import package to (both
// relative to the module), and if not, why.
func allowed(from, to string) (bool, string) {
	lf, lt := layerOf(from), layerOf(to)
	if lt == testSupport && lf != testSupport {
		return false, "test support is for tests only"
	}
	switch lf {
	case shared:
		if lt != shared {
			return false, "a shared format or library must not depend on either side of the boundary, a simulator or the harness"
		}
	case inside:
		if lt != shared && lt != inside {
			return false, "the enclave links only its own packages and the shared formats"
		}
	case outside:
		if lt != shared {
			return false, "the host links no enclave package and no simulator"
		}
	case sim:
		// A simulator serves the enclave's device seam (package
		// enclave/nsm and its wire format), and nothing else of the
		// enclave.
		if lt == inside && !(to == "enclave/nsm" || strings.HasPrefix(to, "enclave/nsm/")) {
			return false, "a simulator may use only the enclave's NSM seam"
		}
		if lt == outside || lt == harness || lt == tool {
			return false, "a simulator depends on no daemon and no harness"
		}
	case harness:
		// The dev stack runs the host in its own process and the enclave
		// as a separate process, built from cmd/nitrosign-enclave.
		if lt == inside || lt == tool {
			return false, "the harness runs the enclave as a process and imports none of its packages"
		}
	case tool:
		switch {
		case from == "cmd/nitrosign-enclave":
			if lt != shared && lt != inside {
				return false, "the enclave binary links only the enclave's packages and the shared formats"
			}
		case from == "cmd/nitrosign-host":
			if lt != shared && lt != outside {
				return false, "the host binary links only the host and the shared formats"
			}
		default:
			// The operator CLI reads and writes the formats; it runs the
			// daemons only through the harness (nitrosign dev, bench).
			if lt == inside || lt == outside || lt == sim {
				return false, "the CLI imports no daemon and no simulator (nitrosign dev runs them through internal/devstack)"
			}
		}
	}
	return true, ""
}

func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 30 {
		t.Fatalf("go list gave only %d packages; the check would prove nothing", len(lines))
	}
	seen := map[layer]int{}
	for _, line := range lines {
		f := strings.Fields(line)
		from, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			continue
		}
		seen[layerOf(from)]++
		for _, imp := range f[1:] {
			to, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if ok, why := allowed(from, to); !ok {
				t.Errorf("%s (%s) imports %s (%s): %s", from, layerNames[layerOf(from)], to, layerNames[layerOf(to)], why)
			}
		}
	}
	for l, name := range layerNames {
		if seen[l] == 0 {
			t.Errorf("no package in the %s layer: the layout changed, update this test and docs/architecture.md", name)
		}
	}
}

// TestRules: the rules can fail, and pass what the layout intends.
func TestRules(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"enclave", "enclave/kms", true},
		{"enclave", "policy/stateful", true},
		{"policy/stateful", "enclave", false},
		{"policy/stateful", "enclave/kms", false},
		{"enclave", "proto", true},
		{"enclave", "host", false},
		{"enclave", "internal/sim/nsmsim", false},
		{"enclave/kms", "internal/sim/kmssim", false},
		{"enclave", "internal/testgen", false},
		{"host", "enclave", false},
		{"host", "enclave/kms", false},
		{"host", "internal/sim/vsocksim", false},
		{"host", "api", true},
		{"proto", "enclave", false},
		{"genesis", "enclave/kms", false},
		{"policy", "host", false},
		{"api", "internal/devstack", false},
		{"internal/sim/nsmsim", "enclave/nsm", true},
		{"internal/sim/kmssim", "enclave/kms", false},
		{"internal/sim/kmssim", "host", false},
		{"internal/devstack", "host", true},
		{"internal/devstack", "enclave", false},
		{"internal/devstack", "internal/sim/kmssim", true},
		{"cmd/nitrosign", "host", false},
		{"cmd/nitrosign", "enclave/kms", false},
		{"cmd/nitrosign", "internal/devstack", true},
		{"cmd/nitrosign", "genesis", true},
		{"cmd/nitrosign-enclave", "enclave", true},
		{"cmd/nitrosign-enclave", "host", false},
		{"cmd/nitrosign-enclave", "internal/sim/nsmsim", false},
		{"cmd/nitrosign-host", "enclave", false},
		{"cmd/nitrosign-host", "host", true},
		{"internal/devstack/devstacktest", "internal/devstack", true},
		{"internal/devstack", "internal/devstack/devstacktest", false},
		{"enclave/nsm", "enclave/nsm/nsmwire/nsmwiretest", false},
		{"internal/sim/nsmsim", "enclave/nsm/nsmwire/nsmwiretest", false},
	} {
		if ok, why := allowed(tc.from, tc.to); ok != tc.ok {
			t.Errorf("allowed(%s, %s) = %v (%s), want %v", tc.from, tc.to, ok, why, tc.ok)
		}
	}
}
