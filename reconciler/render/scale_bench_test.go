package render

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gitxds.dev/gitxds/testenv/repogen"
)

var (
	benchTeams = flag.String("render.teams", "25,50,100,200", "team counts of BenchmarkRender (25 HTTPRoutes and 5 Backends each)")
	benchWhole = flag.Bool("render.whole", false, "BenchmarkRender also builds the whole overlay in one kustomize run (quadratic: ~50 s at 200 teams)")
)

// BenchmarkRender renders generated repositories of N teams × 25 HTTPRoutes
// + 5 Backends (testenv/repogen) with Render, and in the same run with
// `kubectl kustomize` when kubectl is on PATH:
//
//	cold        Render with an empty shard cache: every shard built
//	one-team    a one-route change in one team, cache warm: one shard built
//	whole       Render with Options.Whole (only with -render.whole)
//	kubectl     kubectl kustomize on the same tree written to disk
//
// Run: go test ./reconciler/render -run '^$' -bench BenchmarkRender -benchtime 1x
func BenchmarkRender(b *testing.B) {
	for _, f := range strings.Split(*benchTeams, ",") {
		teams, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("-render.teams: %v", err)
		}
		spec := repogen.Spec{Teams: teams, Routes: 25}
		files := repogen.Generate(spec)
		b.Run(fmt.Sprintf("teams=%d/cold", teams), func(b *testing.B) {
			fsys, err := files.FS()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				// Cold: no shard cached, no file parsed before (the parse
				// memos are process-wide).
				b.StopTimer()
				resourceMemo = newLRU[[32]byte, parsedResource](1 << 16)
				kustomizationMemo = newLRU[[32]byte, *parsedKustomization](1 << 14)
				b.StartTimer()
				res, err := Render(fsys, "overlays/dev", Options{Cache: NewCache(0)})
				if err != nil {
					b.Fatal(err)
				}
				if res.Shards == 0 || len(res.Objects) != spec.Objects() {
					b.Fatalf("shards %d (%s), objects %d", res.Shards, res.WholeReason, len(res.Objects))
				}
			}
			b.ReportMetric(float64(spec.Objects()), "objects")
		})
		b.Run(fmt.Sprintf("teams=%d/one-team", teams), func(b *testing.B) {
			fsys, err := files.FS()
			if err != nil {
				b.Fatal(err)
			}
			c := NewCache(0)
			if _, err := Render(fsys, "overlays/dev", Options{Cache: c}); err != nil {
				b.Fatal(err)
			}
			g := 0
			for b.Loop() {
				g++
				b.StopTimer()
				if err := repogen.ChangeRoute(spec, g%teams, 0, g).WriteFS(fsys); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := Render(fsys, "overlays/dev", Options{Cache: c})
				if err != nil {
					b.Fatal(err)
				}
				if built := res.Shards - res.ShardsCached; built != 1 {
					b.Fatalf("%d shards built, want 1", built)
				}
			}
		})
		if *benchWhole {
			b.Run(fmt.Sprintf("teams=%d/whole", teams), func(b *testing.B) {
				fsys, err := files.FS()
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := Render(fsys, "overlays/dev", Options{Whole: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		if kubectl, err := exec.LookPath("kubectl"); err == nil {
			b.Run(fmt.Sprintf("teams=%d/kubectl", teams), func(b *testing.B) {
				dir := b.TempDir()
				if err := files.WriteDir(dir); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					cmd := exec.Command(kubectl, "kustomize", filepath.Join(dir, "overlays", "dev"))
					cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("kubectl kustomize: %v\n%s", err, out)
					}
				}
			})
		}
	}
}
