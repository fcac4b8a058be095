package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Outcome of a test.
type Outcome string

const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
)

// Result of one test: why it failed (its first failing check) or why it
// was not run.
type Result struct {
	Test    Test
	Outcome Outcome
	Reason  string
}

// Run runs every test of the module at dir that mapped has checks for or
// updates has steps for, in ShortName order, and reports every other one as
// skipped with why.
func Run(dir string) ([]Result, error) {
	tests, err := Tests(dir)
	if err != nil {
		return nil, err
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, errNoTests)
	}
	var out []Result
	for _, t := range tests {
		out = append(out, runTest(dir, t))
	}
	return out, nil
}

func runTest(dir string, t Test) Result {
	checks, ok := mapped[t.ShortName]
	steps, updated := updates[t.ShortName]
	if !ok && !updated {
		return Result{Test: t, Outcome: Skipped, Reason: skipReason(t)}
	}
	repo, err := Map(dir, t.Manifests)
	if err != nil {
		return Result{Test: t, Outcome: Failed, Reason: "mapping the manifests: " + err.Error()}
	}
	s, err := Build(repo)
	if err != nil {
		return Result{Test: t, Outcome: Failed, Reason: "gitxds's pipeline: " + err.Error()}
	}
	var errs, stale []error
	n := 0
	run := func(cs []check) {
		for _, c := range cs {
			n++
			var se *staleError
			switch err := c(s); {
			case errors.As(err, &se):
				stale = append(stale, err)
			case err != nil:
				errs = append(errs, err)
			}
		}
	}
	run(checks)
	for i, st := range steps {
		run(st.before)
		if err := st.update(repo); err != nil {
			return Result{Test: t, Outcome: Failed, Reason: fmt.Sprintf("update %d: %v", i+1, err)}
		}
		if s, err = Build(repo); err != nil {
			return Result{Test: t, Outcome: Failed, Reason: fmt.Sprintf("gitxds's pipeline after update %d: %v", i+1, err)}
		}
		run(st.after)
	}
	switch {
	case len(errs) > 0:
		reason := fmt.Sprintf("%d of %d checks fail, %d of them on more than observedGeneration; first: %v", len(errs)+len(stale), n, len(errs), errs[0])
		if why, ok := differences[t.ShortName]; ok {
			reason += "; " + why
		}
		return Result{Test: t, Outcome: Failed, Reason: reason}
	case len(stale) > 0:
		return Result{Test: t, Outcome: Failed, Reason: fmt.Sprintf("only on observedGeneration (%d of %d checks; the rest hold): %v", len(stale), n, stale[0])}
	case t.Traffic:
		// Its status holds, but a pass needs its requests too.
		return Result{Test: t, Outcome: Skipped, Reason: fmt.Sprintf("its %d status checks hold; %s", n, trafficReason(t))}
	}
	return Result{Test: t, Outcome: Passed}
}

// trafficReason says why a traffic test's requests are not sent.
func trafficReason(t Test) string {
	if slices.Contains(t.Features, "GRPCRoute") {
		return "its calls are not made: the suite calls the Gateway's address with the route's hostnames as :authority and expects a proxy's answers (UNIMPLEMENTED for a host or method no route matches); a proxyless gRPC-Go client resolves only API listeners named after a route hostname, and gitxds has none for the catch-all and wildcard hostnames these routes and listeners use, so the calls need a gRPC client through Envoy (ENVOY_BIN), which the runner does not drive yet"
	}
	return "its requests are not sent: they go through the Gateway to the suite's echo backends, which needs Envoy (ENVOY_BIN), the backends on loopback and their EndpointSlices in testenv/kubeapi; the runner does not drive them yet"
}

// differences says why gitxds fails some tests by design: appended to
// their reason in the report.
// None today: HTTPRouteMultipleGateways failed this way until each mapped
// Gateway got a proxy group of its own (repo.go).
var differences = map[string]string{}

// skipReason says why a test without checks is not run.
func skipReason(t Test) string {
	var ext []string
	for _, f := range t.Features {
		if !coreFeature[f] {
			ext = append(ext, f)
		}
	}
	sort.Strings(ext)
	switch {
	case t.Provisional:
		return "provisional test (the suite runs it only on request)"
	case len(ext) > 0:
		return "extended feature(s) " + strings.Join(ext, ", ") + " not attempted yet"
	case t.Traffic:
		return "asserts traffic (requests through the Gateway); the runner drives no Envoy yet, and most of these tests route to Services, which gitxds serves once Service backendRefs land"
	}
	return "status-only test whose checks are not restated in testenv/conformance/table.go yet"
}

var coreFeature = map[string]bool{"Gateway": true, "ReferenceGrant": true, "HTTPRoute": true, "GRPCRoute": true}

// errNoTests is returned when the module has no tests (a wrong directory).
var errNoTests = errors.New("no conformance tests found")
