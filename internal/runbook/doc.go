// Package runbook holds the tests that run docs/runbook.md's procedures
// against the dev stack with the real enclave binary. It has no code of its
// own.
//
// # Why
//
// A runbook is read under pressure, and a command that has drifted from the
// CLI (a renamed flag, a changed output the next step parses) fails when it
// is needed most. So the command blocks the tests run are not copies: each
// is marked in the document with an HTML comment,
//
//	<!-- runbook-test: NAME -->
//
// before its fenced block, and the tests read docs/runbook.md, run the block
// NAME with bash (the nitrosign binary built from this tree first on PATH,
// the placeholders of the runbook set as shell variables, the variables a
// block sets kept for the next block, as in one terminal session) and check
// what it did. A block that needs real AWS or Nitro hardware is marked
//
//	<!-- runbook-manual: WHY -->
//
// instead; every fenced block carries one of the two markers, every block
// marked runbook-test is run by the test the exercised table names, and
// every nitrosign command and flag the runbook spells (in any block, or in
// inline code) is checked against the command's -h.
package runbook
