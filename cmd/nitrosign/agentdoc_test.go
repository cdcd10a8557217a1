package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAgentDocFlags: every flag docs/integrations.md and the README give
// `nitrosign agent` is one of its flags, so a renamed flag cannot leave
// the docs behind. The flags of other programs named there (Clef's
// --chainid and --ipcpath, go-ethereum's --http.vhosts, Foundry's
// --unlocked) and of other nitrosign commands are listed as foreign.
func TestAgentDocFlags(t *testing.T) {
	var usage bytes.Buffer
	if code := mainWithArgs([]string{"agent", "-h"}, &bytes.Buffer{}, &usage); code != 0 {
		t.Fatalf("agent -h: exit %d", code)
	}
	has := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(usage.String(), -1) {
		has[m[1]] = true
	}
	if len(has) < 10 {
		t.Fatalf("read %d flags from the agent's usage:\n%s", len(has), usage.String())
	}
	foreign := map[string]bool{
		"chainid": true, "ipcpath": true, "http": true, // Clef's and go-ethereum's
		"unlocked":        true, // Foundry's
		"id":              true, // nitrosign approvals show --id
		"public-key-file": true, // nitrosign genesis add-client --public-key-file
		"version":         true, // nitrosign --version
	}
	flag := regexp.MustCompile(`--([a-z][a-z-]*[a-z])(\.[a-z]+)?`)
	check := func(file, text string) {
		n := 0
		for _, m := range flag.FindAllStringSubmatch(text, -1) {
			if m[2] != "" || foreign[m[1]] {
				continue
			}
			n++
			if !has[m[1]] {
				t.Errorf("%s names --%s, which nitrosign agent does not have", file, m[1])
			}
		}
		if n == 0 {
			t.Errorf("%s: no agent flag found: the section moved?", file)
		}
	}
	doc, err := os.ReadFile("../../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, agentPart, _ := strings.Cut(string(doc), "\n## The agent\n")
	agentPart, _, _ = strings.Cut(agentPart, "\n## ethers v6\n")
	_, provisioning, _ := strings.Cut(string(doc), "\n## Provisioning the agent\n")
	check("docs/integrations.md", agentPart+provisioning)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, readmePart, _ := strings.Cut(string(readme), "\n## Your wallet stack, unchanged: `nitrosign agent`\n")
	readmePart, _, _ = strings.Cut(readmePart, "\n## ")
	check("README.md", readmePart)
}
