package conformance

import (
	"fmt"
	"sort"
	"strings"
)

// Profile is a conformance profile of the report.
type Profile struct {
	Name string
	// Route is the profile's route feature (HTTPRoute, GRPCRoute).
	Route string
	// Others are the prefixes of the extended features of the profile
	// besides the route's and the Gateway's.
	Others []string
}

// Profiles reported: the suite's GATEWAY-HTTP and GATEWAY-GRPC.
var Profiles = []Profile{
	{Name: "GATEWAY-HTTP", Route: "HTTPRoute", Others: []string{"BackendTLSPolicy"}},
	{Name: "GATEWAY-GRPC", Route: "GRPCRoute"},
}

// in reports whether test t belongs to profile p, and whether as a core
// test: all its features are the Gateway's, ReferenceGrant, the profile's
// route's, or (for extended tests) extended features of these.
func (p Profile) in(t Test) (in, core bool) {
	core = true
	for _, f := range t.Features {
		switch {
		case f == "Gateway" || f == "ReferenceGrant" || f == p.Route:
		case strings.HasPrefix(f, "Gateway") || strings.HasPrefix(f, p.Route) || hasPrefix(f, p.Others):
			core = false
		default:
			return false, false
		}
	}
	return true, core
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Report writes the results in the shape of Gateway API's
// ConformanceReport (apis/v1 of the conformance module) as YAML. The reason
// of each skipped or failed test is a comment after its name, so the file
// still decodes into the suite's type. It has no date and the same results
// give the same bytes.
func Report(results []Result) []byte {
	var b strings.Builder
	b.WriteString(`# Gateway API conformance report of gitxds, made by testenv/conformance
# (go -C tools tool task -d .. conformance); docs/conformance/README.md says how.
# Do not edit: TestReport fails when this file differs from a new run.
apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
implementation:
  organization: gitxds
  project: gitxds
  url: https://gitxds.dev/gitxds
  version: main
  contact:
  - gitxds maintainers
date: ""
`)
	fmt.Fprintf(&b, "gatewayAPIVersion: %s\ngatewayAPIChannel: standard\nmode: default\nprofiles:\n", Version)
	for _, p := range Profiles {
		var core, ext []Result
		unsupported := map[string]bool{}
		for _, r := range results {
			in, isCore := p.in(r.Test)
			switch {
			case !in:
			case isCore:
				core = append(core, r)
			default:
				ext = append(ext, r)
				for _, f := range r.Test.Features {
					if !coreFeature[f] && r.Outcome != Passed {
						unsupported[f] = true
					}
				}
			}
		}
		cs, es := stats(core), stats(ext)
		fmt.Fprintf(&b, "- name: %s\n  summary: core tests %d passed, %d failed, %d skipped of %d; extended tests %d passed, %d failed, %d skipped of %d.\n",
			p.Name, cs.passed, cs.failed, cs.skipped, len(core), es.passed, es.failed, es.skipped, len(ext))
		b.WriteString("  core:\n")
		writeStatus(&b, "    ", core)
		b.WriteString("  extended:\n")
		writeStatus(&b, "    ", ext)
		if len(unsupported) > 0 {
			b.WriteString("    unsupportedFeatures:\n")
			for _, f := range sortedSet(unsupported) {
				fmt.Fprintf(&b, "    - %s\n", f)
			}
		}
	}
	return []byte(b.String())
}

type counts struct{ passed, failed, skipped int }

func stats(rs []Result) counts {
	var c counts
	for _, r := range rs {
		switch r.Outcome {
		case Passed:
			c.passed++
		case Failed:
			c.failed++
		default:
			c.skipped++
		}
	}
	return c
}

// result is the suite's: success when every test passed, failure when one
// failed, partial when some were skipped.
func (c counts) result() string {
	switch {
	case c.failed > 0:
		return "failure"
	case c.skipped > 0:
		return "partial"
	}
	return "success"
}

func writeStatus(b *strings.Builder, ind string, rs []Result) {
	c := stats(rs)
	fmt.Fprintf(b, "%sresult: %s\n%sstatistics:\n%s  Passed: %d\n%s  Skipped: %d\n%s  Failed: %d\n",
		ind, c.result(), ind, ind, c.passed, ind, c.skipped, ind, c.failed)
	list := func(name string, o Outcome) {
		first := true
		for _, r := range rs {
			if r.Outcome != o {
				continue
			}
			if first {
				fmt.Fprintf(b, "%s%s:\n", ind, name)
				first = false
			}
			fmt.Fprintf(b, "%s- %s  # %s\n", ind, r.Test.ShortName, oneLine(r.Reason))
		}
	}
	list("skippedTests", Skipped)
	list("failedTests", Failed)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
