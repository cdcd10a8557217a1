package docscheck

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/genesis/genesisedit"
)

// jsonFields returns the JSON paths of the fields of struct type t and of
// the structs it holds (through pointers and slices, "[]" marking an
// array's elements), prefixed by prefix. A json.RawMessage field is a leaf:
// nested documents are walked by the caller (the admin set) or documented
// elsewhere (the policy, docs/policy.md).
func jsonFields(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type, prefix)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		if ft == reflect.TypeFor[json.RawMessage]() {
			continue
		}
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			if ft.Kind() == reflect.Slice {
				path += "[]"
			}
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, jsonFields(ft, path+".")...)
		}
	}
	return out
}

// documentedFields returns the field paths of the rows of the Fields table
// of docs/genesis.md.
func documentedFields(t *testing.T) []string {
	t.Helper()
	md, err := os.ReadFile("../../docs/genesis.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(md), "\n## Fields\n")
	if !ok {
		t.Fatal("docs/genesis.md has no \"## Fields\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var out []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestGenesisFieldsDocumented checks that the Fields table of
// docs/genesis.md has a row for every field of genesis.Config, nested
// structs included, and of the admin set (admin.Config, the "admins"
// field), and no row for a field that does not exist.
func TestGenesisFieldsDocumented(t *testing.T) {
	fields := jsonFields(reflect.TypeFor[genesis.Config](), "")
	fields = append(fields, jsonFields(reflect.TypeFor[admin.Config](), "admins.")...)
	if len(fields) < 25 {
		t.Fatalf("only %d fields found: the walk lost some: %q", len(fields), fields)
	}
	documented := documentedFields(t)
	for _, f := range fields {
		if !slices.Contains(documented, f) {
			t.Errorf("docs/genesis.md does not document the genesis field %q (add a row to its Fields table)", f)
		}
	}
	for _, d := range documented {
		if !slices.Contains(fields, d) {
			t.Errorf("docs/genesis.md documents %q, which is no genesis field", d)
		}
	}
}

// TestGenesisCheckRulesDocumented checks that docs/genesis.md explains
// every rule of `nitrosign genesis check`, with its severity.
func TestGenesisCheckRulesDocumented(t *testing.T) {
	md, err := os.ReadFile("../../docs/genesis.md")
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]bool{
		genesisedit.CheckKMSMissing: true, genesisedit.CheckKMSRootCA: true,
		genesisedit.CheckAdminsMissing: true, genesisedit.CheckClientsMissing: true,
	}
	for _, r := range genesisedit.Rules() {
		sev := "warning"
		if problems[r] {
			sev = "problem"
		}
		if row := "| `" + r + "` | " + sev + " |"; !strings.Contains(string(md), row) {
			t.Errorf("docs/genesis.md lacks the row %q", row)
		}
	}
}
