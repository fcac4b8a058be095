// Package conformance runs Gateway API's conformance suite
// (sigs.k8s.io/gateway-api/conformance, v1.6.3) against gitxds and writes its
// report in the suite's ConformanceReport shape (docs/conformance/).
//
// The suite's own machinery drives a Kubernetes cluster whose Gateway
// controller writes status to the API server; gitxds reads Gateway API
// objects from Git and serves status on its own API. So this runner does
// not import the suite's Go packages (they would bring controller-runtime,
// testify and the rest into the main module): it reads the suite's test
// list, features and manifests from the conformance module's source in the
// module cache (go/ast on tests/*.go, the YAML files as they are), maps each
// test's manifests with the base manifests into a config repository in
// gitxds's layout (repo.go), runs gitxds's pipeline on it, and checks the
// status expectations each mapped test asserts (checks.go, a table keyed by
// the test's ShortName that restates the conditions of the test's Go body).
// A test without an entry in that table is reported skipped, with why.
package conformance

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Module is the conformance suite's module and the version run, the
// version of sigs.k8s.io/gateway-api in go.mod.
const (
	Module  = "sigs.k8s.io/gateway-api/conformance"
	Version = "v1.6.3"
)

// ModuleDir returns the conformance module's directory in the module cache,
// downloading it if needed (`go mod download`, the ordinary client).
func ModuleDir() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", Module+"@"+Version).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", Module, Version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", Module, Version, m.Error)
	}
	return m.Dir, nil
}

// Test is one conformance test as its Go source declares it.
type Test struct {
	ShortName   string
	Features    []string // feature names without "Support", e.g. "HTTPRoute"
	Manifests   []string // paths in the module, e.g. "tests/foo.yaml"
	Provisional bool
	// Traffic: the test's body sends requests (HTTP through the Gateway,
	// or gRPC), not only reads status.
	Traffic bool
}

// Tests lists the conformance tests of the module at dir, sorted by
// ShortName: every suite.ConformanceTest literal of tests/*.go.
func Tests(dir string) ([]Test, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tests", "*.go"))
	if err != nil {
		return nil, err
	}
	var out []Test
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, ok := lit.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "ConformanceTest" {
				return true
			}
			t := testOf(lit)
			src, _ := os.ReadFile(f)
			body := string(src[fset.Position(lit.Pos()).Offset:fset.Position(lit.End()).Offset])
			t.Traffic = strings.Contains(body, "MakeRequest") || strings.Contains(body, "http.") ||
				strings.Contains(body, "grpc.") || strings.Contains(body, "roundtripper.")
			out = append(out, t)
			return false
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ShortName < out[j].ShortName })
	return out, nil
}

func testOf(lit *ast.CompositeLit) Test {
	var t Test
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		switch key.Name {
		case "ShortName":
			t.ShortName = stringLit(kv.Value)
		case "Provisional":
			id, _ := kv.Value.(*ast.Ident)
			t.Provisional = id != nil && id.Name == "true"
		case "Features":
			if cl, ok := kv.Value.(*ast.CompositeLit); ok {
				for _, f := range cl.Elts {
					if sel, ok := f.(*ast.SelectorExpr); ok {
						t.Features = append(t.Features, strings.TrimPrefix(sel.Sel.Name, "Support"))
					}
				}
			}
		case "Manifests":
			if cl, ok := kv.Value.(*ast.CompositeLit); ok {
				for _, m := range cl.Elts {
					if s := stringLit(m); s != "" {
						t.Manifests = append(t.Manifests, s)
					}
				}
			}
		}
	}
	return t
}

func stringLit(e ast.Expr) string {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(b.Value)
	if err != nil {
		return ""
	}
	return s
}
