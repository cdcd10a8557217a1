package agent

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// docSection returns the text of the section of docs/integrations.md that
// starts with heading ("### Methods"), up to the next heading of the same
// or a higher level.
func docSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	level := strings.IndexByte(heading, ' ')
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/integrations.md has no %q", heading)
	}
	var out []string
	for line := range strings.SplitSeq(rest, "\n") {
		if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			break
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// tableFirstColumns returns the backquoted names in the first column of
// every row of the markdown tables in s.
func tableFirstColumns(s string) []string {
	var names []string
	name := regexp.MustCompile("`([^`]+)`")
	for line := range strings.SplitSeq(s, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// TestIntegrationsDocMethods: the methods table of docs/integrations.md
// names exactly the methods the agent serves itself.
func TestIntegrationsDocMethods(t *testing.T) {
	documented := tableFirstColumns(docSection(t, "### Methods"))
	served := []string{"eth_chainId", "net_version"} // answered from Config.ChainID without a proxy
	for m := range methods {
		served = append(served, m)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("docs/integrations.md's methods table names\n%v\nthe agent serves\n%v", documented, served)
	}
}

// TestIntegrationsDocErrors: the errors table of docs/integrations.md
// lists the agent's codes with their values.
func TestIntegrationsDocErrors(t *testing.T) {
	documented := map[int]bool{}
	for _, c := range tableFirstColumns(docSection(t, "### Errors")) {
		n, err := strconv.Atoi(c)
		if err != nil {
			t.Fatalf("errors table: %q is not a code", c)
		}
		documented[n] = true
	}
	for _, c := range []int{jsonrpc.CodeRefused, jsonrpc.CodeApprovalPending, jsonrpc.CodeEnclaveUnavailable,
		jsonrpc.CodeAttestationFailed, jsonrpc.CodeInvalidParams, jsonrpc.CodeMethodNotFound,
		jsonrpc.CodeParseError, jsonrpc.CodeInvalidRequest} {
		if !documented[c] {
			t.Errorf("docs/integrations.md's errors table does not list %d", c)
		}
		delete(documented, c)
	}
	for c := range documented {
		t.Errorf("docs/integrations.md's errors table lists %d, which the agent does not answer", c)
	}
}
