package runbook_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// exercised names the test that runs each block marked runbook-test: a
// block must be listed here to run, and its test fails unless it ran it.
var exercised = map[string]string{
	"attest":               "TestRunbookKeysSealAndAudit",
	"audit-daily":          "TestRunbookKeysSealAndAudit",
	"audit-prove":          "TestRunbookKeysSealAndAudit",
	"key-create-write":     "TestRunbookKeysSealAndAudit",
	"key-create-verify":    "TestRunbookKeysSealAndAudit",
	"key-import-write":     "TestRunbookKeysSealAndAudit",
	"seal-rotate-write":    "TestRunbookKeysSealAndAudit",
	"seal-rotate-verify":   "TestRunbookKeysSealAndAudit",
	"admin-sign":           "TestRunbookKeysSealAndAudit",
	"admin-submit":         "TestRunbookKeysSealAndAudit",
	"kms-policy-both":      "TestRunbookUpgradePolicyAndApprovers",
	"kms-policy-new-only":  "TestRunbookUpgradePolicyAndApprovers",
	"upgrade-verify":       "TestRunbookUpgradePolicyAndApprovers",
	"policy-fetch":         "TestRunbookUpgradePolicyAndApprovers",
	"policy-sign":          "TestRunbookUpgradePolicyAndApprovers",
	"policy-submit":        "TestRunbookUpgradePolicyAndApprovers",
	"policy-cancel":        "TestRunbookUpgradePolicyAndApprovers",
	"policy-verify":        "TestRunbookUpgradePolicyAndApprovers",
	"dr-restore":           "TestRunbookDisasterRecoveryAndUnfreeze",
	"dr-verify":            "TestRunbookDisasterRecoveryAndUnfreeze",
	"audit-accept-warning": "TestRunbookDisasterRecoveryAndUnfreeze",
	"freeze-find":          "TestRunbookDisasterRecoveryAndUnfreeze",
	"unfreeze-write":       "TestRunbookDisasterRecoveryAndUnfreeze",
	"freeze-write":         "TestRunbookFreeze",
}

// TestRunbookMarkers: the runbook parses (every fenced block marked, names
// unique), the blocks marked runbook-test are exactly the ones a test runs,
// and each procedure of issue 16 has a section.
func TestRunbookMarkers(t *testing.T) {
	blocks := readRunbook(t)
	marked := map[string]bool{}
	manual := 0
	for _, b := range blocks {
		if b.name == "" {
			manual++
			continue
		}
		marked[b.name] = true
		if _, ok := exercised[b.name]; !ok {
			t.Errorf("block %s (line %d) is marked runbook-test but no test runs it", b.name, b.line)
		}
	}
	for name, test := range exercised {
		if !marked[name] {
			t.Errorf("%s runs block %s, which docs/runbook.md does not mark", test, name)
		}
	}
	if manual == 0 || len(marked) == 0 {
		t.Errorf("%d tested and %d manual blocks", len(marked), manual)
	}
	doc, _ := os.ReadFile(runbookPath)
	for _, section := range []string{"Freeze and unfreeze", "Key creation", "Key import", "Seal rotation",
		"A policy change through its time lock", "Approver rotation", "Enclave upgrade",
		"Disaster recovery from the sealed blobs", "Audit verification: a schedule"} {
		if !regexp.MustCompile(`(?m)^## \d+\. ` + regexp.QuoteMeta(section) + `$`).Match(doc) {
			t.Errorf("no section %q", section)
		}
	}
}

// TestRunbookParse: the parser refuses what would let a block drift out of
// the tests' sight.
func TestRunbookParse(t *testing.T) {
	tests := []struct {
		name, doc, err string
	}{
		{"unmarked block", "text\n```sh\nnitrosign keys\n```\n", "without a runbook-test or runbook-manual marker"},
		{"unmarked other language", "```json\n{}\n```\n", "without a runbook-test"},
		{"marked non-sh", "<!-- runbook-test: a -->\n```bash\nx\n```\n", "must be a ```sh block"},
		{"name twice", "<!-- runbook-test: a -->\n```sh\nx\n```\n<!-- runbook-test: a -->\n```sh\ny\n```\n", "used again"},
		{"marker then text", "<!-- runbook-test: a -->\ntext\n```sh\nx\n```\n", "not followed by a fenced block"},
		{"unterminated", "<!-- runbook-test: a -->\n```sh\nx\n", "ends inside a block"},
		{"marker at the end", "<!-- runbook-manual: why -->\n", "ends inside a block or after a marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRunbook([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
	blocks, err := parseRunbook([]byte("1. step\n\n   <!-- runbook-test: a -->\n   ```sh\n   nitrosign keys \\\n       --host X\n   ```\n"))
	if err != nil || len(blocks) != 1 || blocks[0].text != "nitrosign keys \\\n    --host X\n" {
		t.Fatalf("an indented block: %+v, %v", blocks, err)
	}
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	cliCall  = regexp.MustCompile(`(?:^|[\s(|;&])nitrosign ([a-z-]+)((?: [a-z-]+)?)([^|;&)]*)`)
	flagName = regexp.MustCompile(`(?:^|[\s+])--([a-z0-9-]+)`)
)

// subcommanded are the commands whose second word is a subcommand.
var subcommanded = map[string]bool{"attest": true, "audit": true, "policy": true, "admin": true, "approvals": true}

// TestRunbookFlags: every nitrosign command the runbook spells, in blocks
// (the manual ones too) and in inline code, exists with every flag it
// uses, as the command's -h lists them.
func TestRunbookFlags(t *testing.T) {
	bin := filepath.Join(cliBinDir(t), "nitrosign")
	doc, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	var snippets []string
	for _, b := range readRunbook(t) {
		snippets = append(snippets, strings.Split(strings.ReplaceAll(b.text, "\\\n", " "), "\n")...)
	}
	inBlock := false
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			for _, m := range codeSpan.FindAllStringSubmatch(l, -1) {
				snippets = append(snippets, m[1])
			}
		}
	}
	uses := map[string]map[string]bool{} // "cmd sub" -> flags
	for _, sn := range snippets {
		for _, m := range cliCall.FindAllStringSubmatch(sn, -1) {
			cmd, rest := m[1], m[2]+m[3]
			if subcommanded[cmd] {
				sub := strings.TrimSpace(m[2])
				if sub == "" {
					continue // the command named on its own: `nitrosign audit`
				}
				cmd, rest = cmd+" "+sub, m[3]
			}
			if uses[cmd] == nil {
				uses[cmd] = map[string]bool{}
			}
			for _, f := range flagName.FindAllStringSubmatch(rest, -1) {
				uses[cmd][f[1]] = true
			}
		}
	}
	if len(uses) < 10 {
		t.Fatalf("found only %d nitrosign commands in the runbook: %v", len(uses), uses)
	}
	cmds := make([]string, 0, len(uses))
	for c := range uses {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	for _, c := range cmds {
		out, err := exec.Command(bin, append(strings.Fields(c), "-h")...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "nitrosign "+c) {
			t.Errorf("nitrosign %s -h: %v\n%s", c, err, out)
			continue
		}
		for f := range uses[c] {
			if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f) + `( |$)`).Match(out) {
				t.Errorf("the runbook uses nitrosign %s --%s, which the command does not have", c, f)
			}
		}
	}
}
