package model

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"gitxds.dev/gitxds/reconciler/render"
)

// TestDecodeCacheUnmodified builds every golden case three times on one
// DecodeCache, as a reconciler does across revisions: each build gives the
// output of a build without a shared cache, and afterwards every typed
// object in the cache still equals a fresh decoding of its YAML (no step of
// the model modified a shared object).
func TestDecodeCacheUnmodified(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	dc := &DecodeCache{}
	var all []render.Object
	for _, in := range ins {
		input := readCase(t, in)
		want := goldenOutput(t, Build(input), true)
		shared := input
		shared.Decoded = dc
		for i := range 3 {
			if got := goldenOutput(t, Build(shared), true); !bytes.Equal(got, want) {
				t.Errorf("%s: build %d on a shared cache differs:\n%s\nwant:\n%s", in, i, got, want)
			}
		}
		all = append(all, input.Objects...)
		for _, o := range input.LastAccepted {
			all = append(all, o)
		}
	}
	// Every case again, now that the cache holds the objects of all of them.
	for _, in := range ins {
		input := readCase(t, in)
		want := goldenOutput(t, Build(input), true)
		input.Decoded = dc
		if got := goldenOutput(t, Build(input), true); !bytes.Equal(got, want) {
			t.Errorf("%s: build on the cache of every case differs", in)
		}
	}
	checked := 0
	for _, o := range all {
		kind := o.APIVersion + " " + o.Kind
		mk, ok := kinds[kind]
		if !ok {
			continue
		}
		cached, cerr := dc.decode(kind, mk, o.YAML)
		fresh := mk()
		ferr := unmarshalStrict(o.YAML, fresh)
		switch {
		case fmt.Sprint(cerr) != fmt.Sprint(ferr):
			t.Errorf("%s (%s): cached error %v, fresh error %v", o.ID(), o.File, cerr, ferr)
		case ferr == nil && !reflect.DeepEqual(cached, fresh):
			t.Errorf("%s (%s): the cached object was modified:\n%#v\nfresh:\n%#v", o.ID(), o.File, cached, fresh)
		}
		checked++
	}
	if checked < 100 {
		t.Errorf("only %d objects checked", checked)
	}
}

// TestRolloutNotShared: Output.Rollout is the caller's; modifying it does
// not change the next build on the same cache.
func TestRolloutNotShared(t *testing.T) {
	input := readCase(t, "testdata/rollout.in.yaml")
	dc := &DecodeCache{}
	input.Decoded = dc
	first := Build(input)
	if first.Rollout == nil || len(first.Rollout.Spec.Stages) == 0 {
		t.Fatal("the rollout case has no accepted RolloutPolicy with stages")
	}
	want := goldenOutput(t, first, true)
	first.Rollout.Spec.Stages[0].Name = "modified by the caller"
	first.Rollout.Spec.Stages = first.Rollout.Spec.Stages[:0]
	second := Build(input)
	if got := goldenOutput(t, second, true); !bytes.Equal(got, want) {
		t.Errorf("the next build sees the caller's change:\n%s", got)
	}
	if second.Rollout == first.Rollout {
		t.Error("two builds return the same RolloutPolicy")
	}
}

// TestDecodeCacheGenerations: past maxDecodeCache entries the cache keeps
// what was used in the last generation and drops the rest.
func TestDecodeCacheGenerations(t *testing.T) {
	defer func(n int) { maxDecodeCache = n }(maxDecodeCache)
	maxDecodeCache = 100
	dc := &DecodeCache{}
	kind := "v1 Namespace"
	ns := func(i int) []byte {
		return []byte(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n%d\n", i))
	}
	hot, err := dc.decode(kind, kinds[kind], ns(-1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * maxDecodeCache {
		if _, err := dc.decode(kind, kinds[kind], ns(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if again, _ := dc.decode(kind, kinds[kind], ns(-1)); again != hot {
				t.Fatalf("after %d entries: a used entry was dropped", i)
			}
		}
		if n := dc.cur.n + dc.prev.n; n > 2*maxDecodeCache {
			t.Fatalf("%d entries, more than two generations", n)
		}
	}
	if _, ok := dc.cur.get(kind, ns(1)); ok {
		t.Error("an entry not used for a generation is still there")
	}
	if _, ok := dc.prev.get(kind, ns(1)); ok {
		t.Error("an entry not used for a generation is still there")
	}
}
