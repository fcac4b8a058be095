package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// revision is the VCS revision, set at build time with
// -ldflags "-X main.revision=<commit>" where the build has no VCS stamp
// (a build from a source archive, or with -buildvcs=false).
var revision = ""

// buildVersion is what `gitxds version` prints: the version (the -ldflags
// value, else the module version of a `go install …@version` build), the
// VCS revision (the -ldflags value, else the one Go stamped into the
// binary), whether the work tree was modified, and the Go version.
func buildVersion(ldVersion, ldRevision string, info *debug.BuildInfo, ok bool) string {
	v, rev, modified, goVersion := ldVersion, ldRevision, false, runtime.Version()
	if ok && info != nil {
		goVersion = info.GoVersion
		if (v == "" || v == "dev") && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	if modified {
		rev += "-modified"
	}
	return fmt.Sprintf("gitxds %s (revision %s, %s)", v, rev, goVersion)
}

func versionString() string {
	info, ok := debug.ReadBuildInfo()
	return buildVersion(version, revision, info, ok)
}
