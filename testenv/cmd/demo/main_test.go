package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/prom"
)

// The README's first command is `go run ./testenv/cmd/demo`. These tests run
// it end to end, in process, and check from its output what the README
// says it shows, step by step.

// TestDemo runs the demo as the README does: the gate on real Prometheus
// when it is installed (required when GITXDS_REQUIRE_PROMETHEUS=1, as in
// CI), otherwise on the data plane's own query API.
func TestDemo(t *testing.T) {
	want := gateDataplane
	if _, err := prom.Binary(); err == nil || os.Getenv(prom.EnvRequire) == "1" {
		want = gatePrometheus
	}
	runDemo(t, gateAuto, want)
}

// TestDemoDataplaneGate runs it with the gate a machine without Prometheus
// gets.
func TestDemoDataplaneGate(t *testing.T) {
	runDemo(t, gateDataplane, gateDataplane)
}

// TestGateChoice: without prometheus on PATH the demo says it uses the data
// plane's query API, unless Prometheus is required.
func TestGateChoice(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dp, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	d := &demo{}
	t.Setenv(prom.EnvRequire, "")
	addr, which, err := d.gate(context.Background(), dp, gateAuto)
	if err != nil || addr != dp.QueryURL() || !strings.Contains(which, "the data plane's own Prometheus query API") {
		t.Errorf("no prometheus: %q, %q, %v; want the data plane's query API", addr, which, err)
	}
	t.Setenv(prom.EnvRequire, "1")
	if _, _, err := d.gate(context.Background(), dp, gateAuto); err == nil {
		t.Errorf("no prometheus with %s=1: no error", prom.EnvRequire)
	}
	if _, _, err := d.gate(context.Background(), dp, gatePrometheus); err == nil {
		t.Error("-gate prometheus without prometheus: no error")
	}
}

func runDemo(t *testing.T, gate, want string) {
	if testing.Short() {
		t.Skip("the demo takes about 20 seconds")
	}
	if want == gatePrometheus {
		prom.Require(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := run(ctx, &out, options{gate: gate})
	t.Logf("demo output (%s):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	text := out.String()

	setup := section(t, text, "0. ", "1. ")
	wantGate := "metric gate: the data plane's own Prometheus query API"
	if want == gatePrometheus {
		wantGate = "metric gate: real Prometheus"
	}
	has(t, "set-up", setup, wantGate, "Ready=True")
	tr := traffic(t, setup, "before any change")
	only(t, "before any change", tr, "payments-v1")

	// 1. The canary first: while it bakes, only the canary node is moved.
	s1 := section(t, text, "1. ", "2. ")
	if !regexp.MustCompile(`(?m)status: rollout \S+ Succeeded: stage canary Passed \(1/1 ACKed: canary-1\), error-ratio=[0-9.e-]+ \(max 0\.1\) \| stage all Passed \(2/2 ACKed: stable-1, stable-2\)$`).MatchString(s1) {
		t.Errorf("step 1: no status line with the rollout succeeded, the canary's gate within bounds and both stable nodes ACKed")
	}
	if !regexp.MustCompile(`(?m)status: rollout \S+ Progressing: stage canary Baking \(1/1 ACKed: canary-1\).* \| stage all Pending$`).MatchString(s1) {
		t.Errorf("step 1: no status line with the canary stage baking and the stable nodes' stage pending")
	}
	tr = traffic(t, s1, "while the canary bakes")
	if tr[groupCanary]["payments-v2"] == 0 {
		t.Errorf("step 1: the canary node got no payments-v2 while it baked: %v", tr)
	}
	only(t, "step 1, stable nodes while the canary bakes", map[string]map[string]int{groupStable: tr[groupStable]}, "payments-v1")
	tr = traffic(t, s1, "after the rollout")
	if tr[groupStable]["payments-v2"] == 0 {
		t.Errorf("step 1: the stable nodes got no payments-v2 after the rollout: %v", tr)
	}

	// 2. The metric gate fails on the canary; the stable nodes never see
	// the change; gitxds rolls it back.
	s2 := section(t, text, "2. ", "3. ")
	has(t, "step 2", s2, "Failed: stage canary Failed (1/1 ACKed: canary-1), error-ratio=", "FAILING | stage all Pending",
		"Ready=False RolloutFailed: rollout of main@sha1:", "failed and was rolled back: stage canary: metric error-ratio =",
		"is out of bounds (max 0.1) on node(s) canary-1", "(no change to what is served)")
	if m := regexp.MustCompile(`error-ratio=([0-9.e-]+) \(max 0\.1\) FAILING`).FindStringSubmatch(s2); m == nil {
		t.Error("step 2: no failing gate value")
	} else if v, _ := strconv.ParseFloat(m[1], 64); v <= 0.1 {
		t.Errorf("step 2: the failing gate value %g is within bounds", v)
	}
	tr = traffic(t, s2, "while the canary had it")
	if tr[groupCanary]["error: Internal"] == 0 || tr[groupCanary]["payments-v3"] == 0 {
		t.Errorf("step 2: the canary node's calls did not reach payments-v3 and fail: %v", tr)
	}
	for k := range tr[groupStable] {
		if k != "payments-v1" && k != "payments-v2" {
			t.Errorf("step 2: the stable nodes saw %q during the bad rollout: %v", k, tr)
		}
	}
	tr = traffic(t, s2, "after the rollback")
	for g, a := range tr {
		for k := range a {
			if k != "payments-v1" && k != "payments-v2" {
				t.Errorf("step 2: %s nodes answered by %q after the rollback: %v", g, k, tr)
			}
		}
	}

	// 3. gitxds preview prints its Markdown.
	s3 := section(t, text, "3. ", "4. ")
	has(t, "step 3", s3, "gitxds preview --repo", "## gitxds preview: ✅ valid", "| Teams | `shop` |",
		"| Hostnames | `cart.example.com` |", "| Rollout | canary → all |", "| xDS clients | ✅")

	// 4. The revert of step 1 goes to every node at once.
	s4 := section(t, text, "4. ", "5. ")
	has(t, "step 4", s4, "Succeeded, fast path: served config equals main@sha1:", "which completed a rollout",
		"Ready=True ReconciliationSucceeded:", "(every node at once: served config equals")
	if strings.Contains(s4, "stage canary") {
		t.Errorf("step 4: the revert went through the stages")
	}
	only(t, "step 4", traffic(t, s4, "after the revert"), "payments-v1")

	// 5. shop's route for payments' hostname is refused; payments' traffic
	// is untouched.
	s5 := section(t, text, "5. ", "6. ")
	has(t, "step 5", s5, "status of HTTPRoute shop/payments-takeover", "Accepted=False HostnameNotOwned:",
		`owned by namespace "payments"`, "Ready=False ObjectsRejected:")
	only(t, "step 5", traffic(t, s5, "after shop's push"), "payments-v1")

	// 6. shop's broken YAML is refused for shop alone.
	s6 := section(t, text, "6. ", "Done in ")
	has(t, "step 6", s6, "Ready=False ObjectsRejected:", "repo-layout/teams/shop/shop.yaml: malformed YAML",
		"keeps serving", "every other team's changes are served")
	only(t, "step 6", traffic(t, s6, "with shop's directory refused"), "payments-v1")
}

// section is the text from the line starting with from to the line
// starting with to.
func section(t *testing.T, text, from, to string) string {
	t.Helper()
	i := strings.Index(text, "\n"+from)
	if i < 0 {
		t.Fatalf("no step %q in the output", from)
	}
	j := strings.Index(text[i+1:], "\n"+to)
	if j < 0 {
		t.Fatalf("no step %q after %q in the output", to, from)
	}
	return text[i+1 : i+1+j]
}

func has(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not show %q", what, w)
		}
	}
}

var trafficRE = regexp.MustCompile(`(?m)^\s*traffic (.+?): canary nodes? [^:]+: (.*) \| stable nodes? [^:]+: (.*)$`)

// traffic parses the traffic line of a step: per node group, who answered
// how many calls.
func traffic(t *testing.T, text, when string) map[string]map[string]int {
	t.Helper()
	for _, m := range trafficRE.FindAllStringSubmatch(text, -1) {
		if m[1] != when {
			continue
		}
		return map[string]map[string]int{groupCanary: parseCounts(t, m[2]), groupStable: parseCounts(t, m[3])}
	}
	t.Fatalf("no line \"traffic %s: ...\" in:\n%s", when, text)
	return nil
}

func parseCounts(t *testing.T, s string) map[string]int {
	t.Helper()
	out := map[string]int{}
	if s == "no call" {
		return out
	}
	for _, part := range strings.Split(s, ", ") {
		i := strings.LastIndex(part, " ")
		n, err := strconv.Atoi(part[i+1:])
		if i < 0 || err != nil {
			t.Fatalf("traffic counts %q: %q", s, part)
		}
		out[part[:i]] = n
	}
	return out
}

// only fails unless every node group made calls and all were answered by
// want.
func only(t *testing.T, what string, tr map[string]map[string]int, want string) {
	t.Helper()
	for g, a := range tr {
		if a[want] == 0 {
			t.Errorf("%s: %s nodes got no answer from %s: %v", what, g, want, a)
		}
		for k := range a {
			if k != want {
				t.Errorf("%s: %s nodes answered by %q, want only %s: %v", what, g, k, want, a)
			}
		}
	}
}
