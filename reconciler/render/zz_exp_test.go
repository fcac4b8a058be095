package render

import (
	"testing"
	"time"

	"gitxds.dev/gitxds/testenv/repogen"
)

func TestExpBreakdown(t *testing.T) {
	for _, n := range []int{25, 50} {
		spec := repogen.Spec{Teams: n, Routes: 25}
		fsys, _ := repogen.Generate(spec).FS()
		t0 := time.Now()
		w := newWalker(fsys)
		if err := w.kustomization("overlays/dev", "", "overlay", false, ""); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		st, err := stage(fsys, w, "overlays/dev")
		if err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		m, err := build(st.fs, st.topDir, false)
		if err != nil {
			t.Fatal(err)
		}
		t3 := time.Now()
		objs, err := st.objects(m)
		if err != nil {
			t.Fatal(err)
		}
		t4 := time.Now()
		t.Logf("teams=%d objs=%d walk=%v stage=%v build=%v objects=%v", n, len(objs), t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3))
	}
}
