package ha

import (
	"fmt"

	"gitxds.dev/gitxds/testenv/stack"
)

// Host is the hostname the repositories of RolloutRepo route.
const Host = stack.EchoHost

// RolloutRepo is stack.EchoRepo (backends a and b at the given addresses,
// the route to a) with a RolloutPolicy: a canary stage of the nodes
// labelled rollout-group: canary that bakes for bake, then every node;
// ackTimeout bounds each stage's ACKs.
func RolloutRepo(addrA, addrB, ackTimeout, bake string) map[string]string {
	files := stack.EchoRepo(addrA, addrB)
	files["platform/kustomization.yaml"] = "resources: [namespaces.yaml, gateways.yaml, rollout.yaml]\n"
	files["platform/rollout.yaml"] = fmt.Sprintf(`apiVersion: gitxds.dev/v1alpha1
kind: RolloutPolicy
metadata: {name: default}
spec:
  ackTimeout: %s
  stages:
  - name: canary
    nodeSelector: {matchLabels: {rollout-group: canary}}
    bake: %s
  - name: all
    percent: 100
`, ackTimeout, bake)
	return files
}

// Route is the route of RolloutRepo sent to backend (a or b).
func Route(backend string) *string {
	r := stack.EchoRoute(backend)
	return &r
}
