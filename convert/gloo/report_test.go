package gloo

import (
	"strings"
	"testing"
)

// TestEveryFieldConvertedOrReported: fields the converter does not know, at
// any depth, are reported with their file and field path.
func TestEveryFieldConvertedOrReported(t *testing.T) {
	in := `apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: vs, namespace: shop}
spec:
  futureField: 1
  virtualHost:
    domains: ["shop.example.com", "shop.*"]
    routes:
    - matchers:
      - prefix: /
        someMatcher: x
      routeAction:
        single:
          upstream: {name: web, colour: blue}
      options:
        faults: {abort: {percentage: 10, httpStatus: 503}}
        newOption: true
`
	up := `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: web, namespace: shop}
spec:
  static:
    hosts: [{addr: 10.0.0.1, port: 80}]
  loadBalancerConfig: {roundRobin: {}}
`
	res, err := Convert([]Input{{Name: "vs.yaml", Data: []byte(in)}, {Name: "up.yaml", Data: []byte(up)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if err := res.Report.Write(&got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"vs.yaml: VirtualService shop/vs spec.futureField: not converted",
		"vs.yaml: VirtualService shop/vs spec.virtualHost.domains[1]: not converted",
		"vs.yaml: VirtualService shop/vs spec.virtualHost.routes[0].matchers[0].someMatcher: not converted",
		"vs.yaml: VirtualService shop/vs spec.virtualHost.routes[0].routeAction.single.upstream.colour: not converted",
		"vs.yaml: VirtualService shop/vs spec.virtualHost.routes[0].options.faults: not converted: fault injection",
		"vs.yaml: VirtualService shop/vs spec.virtualHost.routes[0].options.newOption: not converted",
		"up.yaml: Upstream shop/web spec.loadBalancerConfig: not converted",
	} {
		if !strings.Contains(got.String(), want) {
			t.Errorf("report lacks %q; report:\n%s", want, got.String())
		}
	}
	// What converts is not reported.
	for _, never := range []string{"routeAction.single.upstream.name", "domains[0]", "static.hosts"} {
		if strings.Contains(got.String(), never) {
			t.Errorf("report mentions converted field %s:\n%s", never, got.String())
		}
	}
}
