package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitxds.dev/gitxds/convert/gloo"
)

// TestConvertGlooCommand: `gitxds convert gloo` writes a repository that
// `gitxds validate` accepts, lists the report on stderr and in the report
// file, and refuses a non-empty --out (exit 2).
func TestConvertGlooCommand(t *testing.T) {
	in := t.TempDir()
	vs := `apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  virtualHost:
    domains: [shop.example.com]
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: web}}}
    - matchers: [{exact: /ping}]
      directResponseAction: {status: 200}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: web, namespace: shop}
spec:
  static: {hosts: [{addr: 10.0.0.1, port: 8080}]}
`
	if err := os.WriteFile(filepath.Join(in, "shop.yaml"), []byte(vs), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "repo")
	run := func(args ...string) (string, error) {
		root := newRoot()
		var stderr bytes.Buffer
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&stderr)
		root.SetArgs(args)
		err := root.Execute()
		return stderr.String(), err
	}
	stderr, err := run("convert", "gloo", "--out", out, in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "spec.virtualHost.routes[1].directResponseAction: not converted") {
		t.Errorf("stderr lacks the direct response:\n%s", stderr)
	}
	report, err := os.ReadFile(filepath.Join(out, gloo.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "directResponseAction: not converted") {
		t.Errorf("report file lacks the direct response:\n%s", report)
	}
	if _, err := run("validate", "--repo", out, "--path", "overlays/production"); err != nil {
		t.Errorf("validate of the converted repository: %v", err)
	}
	_, err = run("convert", "gloo", "--out", out, in)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Errorf("convert into a non-empty --out: %v, want exit %d", err, exitUsage)
	}
}
