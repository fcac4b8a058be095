package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestBuildVersion: the version and revision come from -ldflags when set,
// else from the module version and VCS stamp Go records in the binary.
func TestBuildVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "gitxds.dev/gitxds", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	cases := []struct {
		name, ldVersion, ldRevision string
		info                        *debug.BuildInfo
		want                        string
	}{
		{"module version and VCS stamp", "dev", "", stamped, "gitxds v0.3.0 (revision 0123456789abcdef-modified, go1.26.8)"},
		{"ldflags win", "v1.2.3", "feedface", stamped, "gitxds v1.2.3 (revision feedface-modified, go1.26.8)"},
		{"devel build without stamp", "dev", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "gitxds dev (revision unknown, go1.26.8)"},
	}
	for _, c := range cases {
		if got := buildVersion(c.ldVersion, c.ldRevision, c.info, true); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVersionCommand: `gitxds version` prints the build's version line.
func TestVersionCommand(t *testing.T) {
	root := newRoot()
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), versionString(); got != want || !strings.HasPrefix(got, "gitxds ") {
		t.Errorf("version printed %q, want %q", got, want)
	}
}
