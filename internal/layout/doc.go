// Package layout holds the test that keeps the module's layout true to its
// trust boundary (docs/architecture.md): what runs in the enclave sits
// under enclave/ and imports only its own packages and the shared formats;
// the host and the tools import no enclave package; the simulators are
// under internal/sim/ and no daemon links them. It has no code of its own.
package layout
