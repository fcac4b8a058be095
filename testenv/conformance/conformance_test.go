package conformance

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"gitxds.dev/gitxds/testenv/golden"
)

var reportFile = filepath.Join("..", "..", "docs", "conformance", "report.yaml")

func moduleDir(t *testing.T) string {
	t.Helper()
	dir, err := ModuleDir()
	if err != nil {
		t.Skipf("the conformance module is not available (%v)", err)
	}
	return dir
}

// TestReport runs the mapped conformance tests against gitxds's pipeline
// and fails when the committed report differs from the new one: a test
// that starts failing, passing, or a change of the suite's test list shows
// up as a stale report (a golden file). `go -C tools tool task -d ..
// conformance` (go test -update) rewrites it.
func TestReport(t *testing.T) {
	results, err := Run(moduleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	got := Report(results)
	for _, r := range results {
		if r.Outcome != Skipped {
			t.Logf("%s: %s %s", r.Test.ShortName, r.Outcome, r.Reason)
		}
	}
	golden.File(t, reportFile, got)
}

// TestReportShape decodes the report with the field names of the suite's
// ConformanceReport (apis/v1) and checks the statistics add up.
func TestReportShape(t *testing.T) {
	var r struct {
		Kind              string `yaml:"kind"`
		GatewayAPIVersion string `yaml:"gatewayAPIVersion"`
		Implementation    struct {
			Project string   `yaml:"project"`
			Contact []string `yaml:"contact"`
		} `yaml:"implementation"`
		Profiles []struct {
			Name string `yaml:"name"`
			Core struct {
				Result     string         `yaml:"result"`
				Statistics map[string]int `yaml:"statistics"`
				Skipped    []string       `yaml:"skippedTests"`
				Failed     []string       `yaml:"failedTests"`
			} `yaml:"core"`
		} `yaml:"profiles"`
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "ConformanceReport" || r.GatewayAPIVersion != Version || r.Implementation.Project == "" || len(r.Profiles) != len(Profiles) {
		t.Fatalf("report header: %+v", r)
	}
	for _, p := range r.Profiles {
		if got := p.Core.Statistics["Skipped"]; got != len(p.Core.Skipped) {
			t.Errorf("%s: Skipped %d, %d skippedTests", p.Name, got, len(p.Core.Skipped))
		}
		if got := p.Core.Statistics["Failed"]; got != len(p.Core.Failed) {
			t.Errorf("%s: Failed %d, %d failedTests", p.Name, got, len(p.Core.Failed))
		}
	}
}
