package enclave

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
)

// TestOneWireAdapter: in the package's non-test files, a proto.Error is
// made in wireError only. Handlers return Go errors (Refusal), and the
// wire's shape is made in one place, so that no handler builds an answer
// that forgets a field (the rule, the audit record) or speaks the wire
// type internally.
func TestOneWireAdapter(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, _ := d.(*ast.FuncDecl)
			ast.Inspect(d, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok || !isProtoError(cl.Type) {
					return true
				}
				if fn != nil && fn.Name.Name == "wireError" && fn.Recv == nil {
					found++
					return true
				}
				t.Errorf("%s: a proto.Error is made outside wireError: return a Refusal (refuse, refuseRule, recorded) instead", fset.Position(cl.Pos()))
				return true
			})
		}
	}
	if found == 0 {
		t.Fatal("wireError makes no proto.Error: the test no longer sees the adapter")
	}
}

func isProtoError(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Error" {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == "proto"
}

// TestWireError: a Refusal keeps its code, rule, message and record
// through wrapping; any other error is answered internal with its text,
// as before the handlers returned errors.
func TestWireError(t *testing.T) {
	r := recorded(refusal.CodePolicyDenied, refusal.RuleFrozen, "key k is frozen", []byte("line"))
	for _, err := range []error{r, fmt.Errorf("wrapped: %w", r)} {
		got := wireError(err)
		if got.Code != r.Code || got.Rule != r.Rule || got.Message != r.Msg || string(got.AuditRecord) != "line" {
			t.Fatalf("wireError(%v) = %+v", err, got)
		}
		if !errors.Is(err, r) || ruleOf(err) != refusal.RuleFrozen || message(err) != r.Msg {
			t.Fatalf("%v: not errors.As-friendly", err)
		}
	}
	got := wireError(errors.New("disk on fire"))
	if got.Code != refusal.CodeInternal || got.Rule != "" || got.Message != "disk on fire" || got.AuditRecord != nil {
		t.Fatalf("an untyped error: %+v", got)
	}
	if m := answer(&proto.HealthResponse{}, nil); m.Type() != proto.TypeHealthResponse {
		t.Fatalf("answer without an error: %T", m)
	}
	if m, ok := answer(nil, refuse(refusal.CodeBadRequest, "x %d", 1)).(*proto.Error); !ok || m.Message != "x 1" || m.Code != refusal.CodeBadRequest {
		t.Fatalf("answer with an error: %+v", m)
	}
}
