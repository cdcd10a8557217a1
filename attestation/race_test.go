//go:build race

package attestation

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
