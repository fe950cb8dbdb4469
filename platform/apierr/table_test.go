package apierr_test

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
)

var update = flag.Bool("update", false, "rewrite docs/errors.md from the table")

const docPath = "../../docs/errors.md"

// reasonConstants reads the Reason* constants declared in apierr.go.
func reasonConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "apierr.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Reason") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					v, _ := strconv.Unquote(lit.Value)
					out[name.Name] = v
				}
			}
		}
		return true
	})
	return out
}

// Every reason has one row, and every row is a declared reason.
func TestTableCoversEveryReason(t *testing.T) {
	t.Parallel()
	consts := reasonConstants(t)
	rows := map[string]apierr.Entry{}
	for _, e := range apierr.Table() {
		rows[e.Reason] = e
		if e.Meaning == "" || e.Calls == "" {
			t.Errorf("%s: meaning or calls missing", e.Reason)
		}
	}
	declared := map[string]bool{}
	for name, v := range consts {
		declared[v] = true
		if _, ok := rows[v]; !ok {
			t.Errorf("%s (%q) has no row in the table", name, v)
		}
	}
	for r := range rows {
		if !declared[r] {
			t.Errorf("row %q is not a declared reason", r)
		}
	}
	if len(consts) < 30 {
		t.Fatalf("parsed only %d reasons", len(consts))
	}
}

// A domain error's status carries its reason's code from the table, whatever wraps it.
func TestToStatus(t *testing.T) {
	t.Parallel()
	for _, e := range apierr.Table() {
		err := fmt.Errorf("store: %w", apierr.New(e.Reason, "boom %d", 1))
		st := apierr.ToStatus(err)
		if st.Code() != e.Code || apierr.Reason(st.Err()) != e.Reason || st.Message() != "boom 1" {
			t.Errorf("%s → %v %q %q, want %v", e.Reason, st.Code(), apierr.Reason(st.Err()), st.Message(), e.Code)
		}
		back := apierr.FromStatus(st.Err())
		if !errors.Is(back, &apierr.Error{Reason: e.Reason}) {
			t.Errorf("%s: FromStatus gave %v", e.Reason, back)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"plain error is internal", errors.New("disk"), codes.Internal},
		{"status passes through", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{"unknown reason is internal", apierr.New("Made.Up", "x"), codes.Internal},
	} {
		if got := apierr.ToStatus(tc.err).Code(); got != tc.code {
			t.Errorf("%s: code %v, want %v", tc.name, got, tc.code)
		}
	}
}

func TestSentinels(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("commit: %w", apierr.Conflict("HAVIP %s kept changing", "havip-1"))
	if !errors.Is(err, apierr.ErrConflict) || errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("errors.Is on reasons broken for %v", err)
	}
}

func renderDoc() string {
	var b strings.Builder
	b.WriteString("# Error reasons\n\n")
	b.WriteString("Every refusal is a gRPC status with a `google.rpc.ErrorInfo` (domain `" + apierr.Domain + "`) whose\n")
	b.WriteString("`reason` is one of these. A reason always carries the same code; REST answers carry the reason\n")
	b.WriteString("in the JSON body, with the HTTP status that fits the code. Generated from the table in\n")
	b.WriteString("`platform/apierr/status.go` by `cd platform && go test ./apierr -run Doc -update`.\n\n")
	b.WriteString("| reason | gRPC code | meaning | returned by |\n|---|---|---|---|\n")
	for _, e := range apierr.Table() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", e.Reason, e.Code, e.Meaning, e.Calls)
	}
	return b.String()
}

// docs/errors.md is the table, as generated.
func TestDoc(t *testing.T) {
	want := renderDoc()
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is stale: run `cd platform && go test ./apierr -run Doc -update`", docPath)
	}
}

func ExampleToStatus() {
	err := fmt.Errorf("create: %w", apierr.New(apierr.ReasonReserved, "10.0.0.1 is the gateway of subnet-1"))
	st := apierr.ToStatus(err)
	fmt.Println(st.Code(), apierr.Reason(st.Err()), st.Message())
	// Output: InvalidArgument InvalidParameterValue.Reserved 10.0.0.1 is the gateway of subnet-1
}
