package rollout

import (
	"fmt"
	"testing"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Bucket must not move across restarts, replicas or versions: a node that
// changes bucket changes stage, and a percent stage would take a different
// share of the fleet after an upgrade. The values are pinned here (FNV-1a 32
// of the node id, mod 100), so any change to the function fails.
func TestBucketIsPinned(t *testing.T) {
	for id, want := range map[string]int{
		"node-42":          70,
		"canary-1":         67,
		"stable-1":         48,
		"envoy-7f9c-abcde": 20,
		"payments/grpc-0":  94,
		"":                 61,
	} {
		if got := Bucket(id); got != want {
			t.Errorf("Bucket(%q) = %d, want %d", id, got, want)
		}
	}
}

// A percent stage takes its share of the fleet: of 10,000 fixed node ids,
// the 10 % stage selects between 9 and 11 %, the 50 % stage (which also
// holds nodes the first did not take) between 39 and 41 % more, and the
// last stage the rest.
func TestPercentStagesSplitTheFleet(t *testing.T) {
	ten, fifty, hundred := int32(10), int32(50), int32(100)
	pol, err := Compile(&v1alpha1.RolloutPolicy{Spec: v1alpha1.RolloutPolicySpec{Stages: []v1alpha1.RolloutStage{
		{Name: "ten", Percent: &ten}, {Name: "half", Percent: &fifty}, {Name: "all", Percent: &hundred},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	count := make([]int, 3)
	for i := range 10000 {
		count[pol.StageOf(fmt.Sprintf("envoy-%d", i), nil)]++
	}
	if count[0] < 900 || count[0] > 1100 || count[1] < 3900 || count[1] > 4100 || count[0]+count[1]+count[2] != 10000 {
		t.Fatalf("stage sizes %v of 10000", count)
	}
}

// A rollout through a 10 % stage moves exactly the nodes of that stage
// first; the others wait for its bake.
func TestRolloutPercentStageMovesItsShareFirst(t *testing.T) {
	good, next := testSet("r1", "a"), testSet("r2", "b")
	f := newFakeFleet()
	f.def = good
	var inFirst, others []string
	for i := range 40 {
		id := fmt.Sprintf("node-%d", i)
		f.add(id, nil)
		if Bucket(id) < 10 {
			inFirst = append(inFirst, id)
		} else {
			others = append(others, id)
		}
	}
	if len(inFirst) == 0 || len(others) == 0 {
		t.Fatalf("fixture: %d nodes in the 10%% stage, %d others", len(inFirst), len(others))
	}
	ten, hundred := int32(10), int32(100)
	pol, err := Compile(&v1alpha1.RolloutPolicy{Spec: v1alpha1.RolloutPolicySpec{AckTimeout: d("2s"), Stages: []v1alpha1.RolloutStage{
		{Name: "ten", Percent: &ten, Bake: d("300ms")}, {Name: "all", Percent: &hundred},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	res := runPlan(t, f, Plan{Revision: "r2", Target: next, LastGood: good, Policy: pol}, nil)
	if res.Phase != Succeeded {
		t.Fatalf("phase %s: %s", res.Phase, res.Message)
	}
	f.mu.Lock()
	hist := append([]string(nil), f.history...)
	f.mu.Unlock()
	// Every node of the first stage is assigned before any other node moves
	// (by assignment or by the new default).
	moved := map[string]bool{}
	for _, h := range hist {
		var id, hash string
		if _, err := fmt.Sscanf(h, "assign %s %s", &id, &hash); err == nil && hash == next.Hash() {
			moved[id] = true
			if Bucket(id) >= 10 {
				for _, n := range inFirst {
					if !moved[n] {
						t.Fatalf("%s moved before %s of the first stage: %v", id, n, hist)
					}
				}
			}
			continue
		}
		if h == "default "+next.Hash() {
			for _, n := range inFirst {
				if !moved[n] {
					t.Fatalf("the default moved before %s of the first stage: %v", n, hist)
				}
			}
		}
	}
	for _, n := range inFirst {
		if !moved[n] {
			t.Fatalf("%s of the first stage was never assigned: %v", n, hist)
		}
	}
	if got := res.Status.Stages[0]; len(got.Nodes) != len(inFirst) {
		t.Fatalf("first stage status %+v, want %d nodes", got, len(inFirst))
	}
}
