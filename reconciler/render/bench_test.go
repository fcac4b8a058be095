package render

import "testing"

func BenchmarkRenderDesignRepo(b *testing.B) {
	var c *testCase
	for _, x := range loadCases(b) {
		if x.name == "design-repo" {
			c = x
		}
	}
	fsys := c.fs(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(fsys, c.opts.Overlay, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
