package refusal_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
)

// moduleRoot is the repository's root, from this package's directory.
const moduleRoot = "../.."

// namePattern is what every code and rule looks like: the host's metrics,
// proto's caps (MaxErrorCodeLen, MaxErrorRuleLen) and clients that branch
// on them count on it.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// TestRegistry: codes and rules are unique, well formed, and known to
// IsCode and IsRule; Status gives the documented classes and 500 for what
// is not a code.
func TestRegistry(t *testing.T) {
	for _, set := range []struct {
		what  string
		names []string
		is    func(string) bool
	}{{"code", refusal.Codes(), refusal.IsCode}, {"rule", refusal.Rules(), refusal.IsRule}} {
		if len(set.names) == 0 {
			t.Fatalf("no %ss", set.what)
		}
		seen := map[string]bool{}
		for _, n := range set.names {
			if seen[n] {
				t.Errorf("%s %q listed twice", set.what, n)
			}
			seen[n] = true
			if !namePattern.MatchString(n) {
				t.Errorf("%s %q does not match %s", set.what, n, namePattern)
			}
			if !set.is(n) {
				t.Errorf("%s %q not known", set.what, n)
			}
		}
		for _, bad := range []string{"", "other", "Bad_request", "frozen ", "policy_denied\x00"} {
			if set.is(bad) {
				t.Errorf("%q is a %s", bad, set.what)
			}
		}
	}
	for _, c := range refusal.Codes() {
		if s := refusal.Status(c); s < 400 || s > 599 {
			t.Errorf("Status(%q) = %d", c, s)
		}
	}
	for _, tc := range []struct {
		code string
		want int
	}{
		{refusal.CodeBadRequest, 400}, {refusal.CodeUnauthorized, 401}, {refusal.CodePolicyDenied, 403},
		{refusal.CodeApprovalRejected, 403}, {refusal.CodeUnknownKey, 404}, {refusal.CodeTooLarge, 413},
		{refusal.CodeInternal, 500}, {refusal.CodeUnavailable, 503}, {refusal.CodeEnclaveUnavailable, 503},
		{"no_such_code", 500}, {"", 500},
	} {
		if got := refusal.Status(tc.code); got != tc.want {
			t.Errorf("Status(%q) = %d, want %d", tc.code, got, tc.want)
		}
	}
	// The lists are the caller's.
	refusal.Codes()[0], refusal.Rules()[0] = "x", "x"
	if refusal.Codes()[0] == "x" || refusal.Rules()[0] == "x" {
		t.Error("Codes or Rules hands out the registry itself")
	}
}

// TestDeclaredOnce: every exported constant of this package is a code or
// a rule the lists hold, and the lists hold nothing else, so that a code
// or rule added as a constant cannot be left out of Codes, Rules, IsCode,
// IsRule, Status or the host's metrics.
func TestDeclaredOnce(t *testing.T) {
	consts := constants(t, ".", false)
	var codes, rules []string
	for name, val := range consts {
		switch {
		case strings.HasPrefix(name, "Code"):
			codes = append(codes, val)
		case strings.HasPrefix(name, "Rule"):
			rules = append(rules, val)
		default:
			t.Errorf("constant %s is neither a code nor a rule", name)
		}
	}
	slices.Sort(codes)
	slices.Sort(rules)
	if got := sorted(refusal.Codes()); !slices.Equal(got, codes) {
		t.Errorf("Codes() = %v, constants %v", got, codes)
	}
	if got := sorted(refusal.Rules()); !slices.Equal(got, rules) {
		t.Errorf("Rules() = %v, constants %v", got, rules)
	}
}

// TestNoOtherDefinitions: no package of the repository but this one
// declares a constant named Code… or Rule… with a string value, nor a
// string constant whose value is a code or rule under another name; the
// codes and rules are defined here only.
func TestNoOtherDefinitions(t *testing.T) {
	known := map[string]bool{}
	for _, n := range append(refusal.Codes(), refusal.Rules()...) {
		known[n] = true
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if abs == self || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != moduleRoot {
				return filepath.SkipDir
			}
			for name, val := range constants(t, path, true) {
				if strings.HasPrefix(name, "Code") || strings.HasPrefix(name, "Rule") || known[val] && isRuleLike(name) {
					t.Errorf("%s: constant %s = %q: codes and rules are defined in package api/refusal only", path, name, val)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isRuleLike reports whether a constant's name says it holds a code or a
// rule under another spelling (ruleX, xRule, codeX).
func isRuleLike(name string) bool {
	l := strings.ToLower(name)
	return strings.Contains(l, "rule") || strings.Contains(l, "code")
}

// constants returns the string constants declared in the non-test Go files
// of dir, by name.
func constants(t *testing.T, dir string, quiet bool) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			if quiet {
				continue // not ours to judge (a build-tagged stub, say)
			}
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					val, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[name.Name] = val
				}
			}
		}
	}
	return out
}

// TestDocsList: the tables of docs/api.md list exactly the codes (with
// their statuses) and the rules defined here; the codes a rule's row says
// it is answered with are codes, with their statuses.
func TestDocsList(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	codeRows := table(t, string(md), "| code | status | when |")
	ruleRows := table(t, string(md), "| rule | answered with | when |")

	var codes []string
	for _, row := range codeRows {
		code := unquote(t, row[0])
		codes = append(codes, code)
		if want := strconv.Itoa(refusal.Status(code)); row[1] != want {
			t.Errorf("docs/api.md: code %s has status %s, package refusal says %s", code, row[1], want)
		}
	}
	if got, want := sorted(codes), sorted(refusal.Codes()); !slices.Equal(got, want) {
		t.Errorf("docs/api.md lists the codes\n%v\npackage refusal defines\n%v", got, want)
	}

	answer := regexp.MustCompile("`([0-9]{3}) ([a-z_]+)`")
	var rules []string
	for _, row := range ruleRows {
		rule := unquote(t, row[0])
		rules = append(rules, rule)
		for _, m := range answer.FindAllStringSubmatch(row[1], -1) {
			if !refusal.IsCode(m[2]) || strconv.Itoa(refusal.Status(m[2])) != m[1] {
				t.Errorf("docs/api.md: rule %s is answered with %s %s, which is not a code and its status", rule, m[1], m[2])
			}
		}
	}
	if got, want := sorted(rules), sorted(refusal.Rules()); !slices.Equal(got, want) {
		t.Errorf("docs/api.md lists the rules\n%v\npackage refusal defines\n%v", got, want)
	}
}

// table returns the cells of the rows of the Markdown table whose header
// line is header, trimmed.
func table(t *testing.T, md, header string) [][]string {
	t.Helper()
	i := strings.Index(md, "\n"+header+"\n")
	if i < 0 {
		t.Fatalf("docs/api.md has no table %q", header)
	}
	lines := strings.Split(md[i+1:], "\n")
	var rows [][]string
	for _, line := range lines[2:] { // the header and the |---| line
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("docs/api.md: table %q is empty", header)
	}
	return rows
}

// unquote returns the name in a cell "`name`".
func unquote(t *testing.T, cell string) string {
	t.Helper()
	if len(cell) < 3 || cell[0] != '`' || cell[len(cell)-1] != '`' {
		t.Fatalf("docs/api.md: cell %q is not a `name`", cell)
	}
	return cell[1 : len(cell)-1]
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
