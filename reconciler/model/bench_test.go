package model

import (
	"testing"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/testenv/repogen"
)

// BenchmarkBuild200Teams models a generated repository of 200 teams × 25
// HTTPRoutes + 5 Backends (6,200 objects), the scale goal's size.
func BenchmarkBuild200Teams(b *testing.B) {
	fsys, err := repogen.Generate(repogen.Spec{Teams: 200, Routes: 25}).FS()
	if err != nil {
		b.Fatal(err)
	}
	res, err := render.Render(fsys, "overlays/dev", render.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		Build(Input{Objects: res.Objects})
	}
}

// BenchmarkBuild200TeamsCached is the same with the decode cache a
// reconciler keeps across revisions (every object unchanged: the steady
// state of a one-team change is within one team's objects of it).
func BenchmarkBuild200TeamsCached(b *testing.B) {
	fsys, err := repogen.Generate(repogen.Spec{Teams: 200, Routes: 25}).FS()
	if err != nil {
		b.Fatal(err)
	}
	res, err := render.Render(fsys, "overlays/dev", render.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var dc DecodeCache
	Build(Input{Objects: res.Objects, Decoded: &dc})
	b.ResetTimer()
	for b.Loop() {
		Build(Input{Objects: res.Objects, Decoded: &dc})
	}
}
