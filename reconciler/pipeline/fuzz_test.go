package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// FuzzTranslate: a fuzzed resource file of the payments team, in the
// example repository, through render, model and translate. Nothing panics;
// when the revision builds, every resource of every node class passes
// ValidateAll, with every typed config inside it (xdsres.Validate), and
// building it again gives the same content hash.
func FuzzTranslate(f *testing.F) {
	for _, glob := range []string{"../../repo-layout/teams/*/*.yaml", "../model/testdata/*.in.yaml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil && !strings.HasSuffix(p, "kustomization.yaml") {
				f.Add(data)
			}
		}
	}
	// The example's files, read once; shards of the unchanged teams come
	// from the cache.
	files := map[string][]byte{}
	for _, dir := range []string{"../../repo-layout", "../../overlays"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			files[strings.TrimPrefix(p, "../..")] = data
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	cache := render.NewCache(0)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := filesys.MakeFsInMemory()
		for p, d := range files {
			if err := fsys.WriteFile(p, d); err != nil {
				t.Fatal(err)
			}
		}
		edit(t, fsys, "repo-layout/teams/payments/kustomization.yaml", func(s string) string { return s + "- fuzz.yaml\n" })
		if err := fsys.WriteFile("/repo-layout/teams/payments/fuzz.yaml", data); err != nil {
			t.Fatal(err)
		}
		var b *Result
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			b, err = New(render.Options{Cache: cache}).Run(fsys, "overlays/dev", "fuzz", nil)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the pipeline takes more than 5 s on\n%q", data)
		}
		if err != nil {
			return
		}
		for class, res := range b.Set.Classes {
			for _, typ := range snapshot.TypeURLs {
				for _, r := range res.ByType(typ) {
					if err := xdsres.Validate(r); err != nil {
						t.Fatalf("%s %s: %v", class, typ, err)
					}
				}
			}
		}
		b2, err := New(render.Options{Cache: cache}).Run(fsys, "overlays/dev", "fuzz", nil)
		if err != nil || b2.Set.Hash() != b.Set.Hash() {
			t.Fatalf("not deterministic: %v", err)
		}
	})
}
