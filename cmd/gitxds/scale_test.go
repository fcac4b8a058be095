package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/preview"
	"gitxds.dev/gitxds/testenv/gitserver"
)

// scaleTeams and scaleRules size the generated repository: the fleet
// figure of BENCHMARKS.md (200 teams x 25 routes).
const (
	scaleTeams = 200
	scaleRules = 25
)

// scaleRepo generates a docs/architecture.md §1 repository of scaleTeams teams, each with
// one hostname, scaleRules rules and two Backends, commits it on main and a
// pull request (a weight shift in one team, a timeout in another) on
// refs/pull/1/head, and returns its URL.
func scaleRepo(t testing.TB) string {
	t.Helper()
	srv := gitserver.New(t, gitserver.Options{})
	r, err := srv.CreateRepo("scale")
	mustDo(t, err)
	files := map[string]string{
		"platform/kustomization.yaml": "resources:\n- gateways.yaml\n- rollout.yaml\n",
		"platform/gateways.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: http, port: 8080, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: All}}}
`,
		"platform/rollout.yaml": `apiVersion: gitxds.dev/v1alpha1
kind: RolloutPolicy
metadata: {name: default}
spec:
  stages:
  - {name: canary, nodeSelector: {matchLabels: {rollout-group: canary}}, bake: 30s}
  - {name: all, percent: 100}
`,
	}
	overlay := "resources:\n- ../../platform\n"
	for i := range scaleTeams {
		team := fmt.Sprintf("team-%03d", i)
		overlay += "- ../../teams/" + team + "\n"
		files["teams/"+team+"/kustomization.yaml"] = "namespace: " + team + "\nresources:\n- backends.yaml\n- routes.yaml\n"
		files["teams/"+team+"/backends.yaml"] = fmt.Sprintf(`apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: v1}
spec:
  endpoints: [{ip: {address: 10.1.%d.1, port: 8080}}, {ip: {address: 10.1.%d.2, port: 8080}}]
---
apiVersion: gitxds.dev/v1alpha1
kind: Backend
metadata: {name: v2}
spec:
  endpoints: [{ip: {address: 10.2.%d.1, port: 8080}}]
`, i%250, i%250, i%250)
		files["teams/"+team+"/routes.yaml"] = scaleRoutes(team, 100, "5s")
	}
	files["overlays/prod/kustomization.yaml"] = overlay
	mustDo(t, r.WriteFiles(files))
	_, err = r.Commit("200 teams")
	mustDo(t, err)
	mustDo(t, r.Checkout("pr"))
	mustDo(t, r.WriteFiles(map[string]string{
		"teams/team-007/routes.yaml": scaleRoutes("team-007", 20, "5s"),
		"teams/team-123/routes.yaml": scaleRoutes("team-123", 100, "9s"),
	}))
	_, err = r.Commit("shift team-007, slow team-123")
	mustDo(t, err)
	mustDo(t, r.PushRef(prRef))
	return r.URL()
}

func scaleRoutes(team string, v1Weight int, timeout string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [%s.example.com]
  rules:
`, team)
	for j := range scaleRules - 1 {
		fmt.Fprintf(&b, "  - matches: [{path: {type: PathPrefix, value: /api/r%02d}}]\n    backendRefs: [{group: gitxds.dev, kind: Backend, name: v1}]\n", j)
	}
	fmt.Fprintf(&b, `  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {group: gitxds.dev, kind: Backend, name: v1, weight: %d}
    - {group: gitxds.dev, kind: Backend, name: v2, weight: %d}
    timeouts: {request: %s}
`, v1Weight, 100-v1Weight, timeout)
	return b.String()
}

// TestPreviewScale measures `gitxds preview` on the generated repository
// against one `gitxds render` of its head, both end to end (fetch over
// smart HTTP, render, model, translate; preview also diffs and serves the
// head to real xDS clients). It logs the figures; it asserts what preview
// found, not how fast it was.
func TestPreviewScale(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and renders a 200-team repository")
	}
	url := scaleRepo(t)
	repo := []string{"--repo", url, "--path", "overlays/prod"}
	// median runs fn and returns the median wall time and the median CPU
	// time of the process (user+system) it took: the machine may be shared,
	// and CPU time is what contention does not inflate.
	var cpus []time.Duration
	median := func(runs int, fn func()) time.Duration {
		var ds, cs []time.Duration
		for range runs {
			c0 := cpuTime(t)
			start := time.Now()
			fn()
			ds = append(ds, time.Since(start))
			cs = append(cs, cpuTime(t)-c0)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
		cpus = append(cpus, cs[len(cs)/2])
		return ds[len(ds)/2]
	}
	render := median(3, func() {
		if _, stderr, code := runGitxds(t, append([]string{"render", "--ref", prRef, "-o", "json"}, repo...)...); code != 0 {
			t.Fatalf("render: exit %d: %s", code, stderr)
		}
	})
	var out string
	withXDS := median(3, func() {
		var stderr string
		var code int
		out, stderr, code = runGitxds(t, append([]string{"preview", "--base", "main", "--head", prRef, "-o", "json"}, repo...)...)
		if code != 0 {
			t.Fatalf("preview: exit %d: %s\n%s", code, stderr, out)
		}
	})
	noXDS := median(3, func() {
		if _, stderr, code := runGitxds(t, append([]string{"preview", "--base", "main", "--head", prRef, "-o", "json", "--skip-xds"}, repo...)...); code != 0 {
			t.Fatalf("preview --skip-xds: exit %d: %s", code, stderr)
		}
	})
	allListeners := median(3, func() {
		if _, stderr, code := runGitxds(t, append([]string{"preview", "--base", "main", "--head", prRef, "-o", "json", "--xds-all-listeners"}, repo...)...); code != 0 {
			t.Fatalf("preview --xds-all-listeners: exit %d: %s", code, stderr)
		}
	})
	var p preview.Report
	mustDo(t, json.Unmarshal([]byte(out), &p))
	if !p.Valid || p.XDS == nil || !p.XDS.Accepted {
		t.Fatalf("preview: valid=%v xds=%+v", p.Valid, p.XDS)
	}
	if got := strings.Join(p.Impact.Teams, ","); got != "team-007,team-123" {
		t.Errorf("teams %q, want team-007,team-123", got)
	}
	nodes := 0
	for _, c := range p.XDS.Classes {
		nodes += c.Nodes
	}
	ratio := func(i int, d time.Duration) string {
		return fmt.Sprintf("%v (%.2fx), CPU %v (%.2fx)", d.Round(time.Millisecond), float64(d)/float64(render),
			cpus[i].Round(time.Millisecond), float64(cpus[i])/float64(cpus[0]))
	}
	t.Logf("%d teams x %d rules, medians of 3 on %d CPUs: one render %v, CPU %v; preview %s; preview --skip-xds %s; "+
		"preview --xds-all-listeners %s; %d changes, %d xDS client nodes",
		scaleTeams, scaleRules, runtime.NumCPU(), render.Round(time.Millisecond), cpus[0].Round(time.Millisecond),
		ratio(1, withXDS), ratio(2, noXDS), ratio(3, allListeners), len(p.Diff.Changes), nodes)
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
