package source

import (
	"context"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"gitxds.dev/gitxds/testenv/gitserver"
)

// Descends tells a branch that moved forward, by one commit or several at
// once, from one moved to a rewritten history (a force-push), on a URL (a
// shallow history, probed) and on a path.
func TestDescends(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"http", "bare"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, repo, first := newRepo(t, gitserver.Options{})
			src := mustSource(t, Options{URL: locations(repo)[name], Ref: "main"})
			ctx := context.Background()
			poll := func() Revision {
				t.Helper()
				rev, _, err := src.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return rev
			}
			commit := func(content string) string {
				t.Helper()
				must(t, repo.WriteFiles(map[string]string{"teams/a/route.yaml": content}))
				sha, err := repo.Commit(content)
				if err != nil {
					t.Fatal(err)
				}
				return sha
			}
			check := func(what string, rev Revision, ancestor string, want bool) {
				t.Helper()
				got, known, err := src.Descends(ctx, rev, plumbing.NewHash(ancestor))
				if err != nil || !known || got != want {
					t.Errorf("%s: Descends = %v (known %v, err %v), want %v", what, got, known, err, want)
				}
			}

			a := poll()
			one := commit("kind: HTTPRoute # 1\n")
			check("one commit forward", poll(), a.Hash.String(), true)
			for i := range 3 {
				commit("kind: HTTPRoute # " + string(rune('2'+i)) + "\n")
			}
			several := poll()
			check("three commits forward at once", several, one, true)

			must(t, repo.Reset(first))
			rewritten := commit("kind: HTTPRoute # rewritten\n")
			rev := poll()
			if rev.Hash.String() != rewritten {
				t.Fatalf("poll after the force-push: %s, want %s", rev, rewritten)
			}
			check("force-pushed", rev, several.Hash.String(), false)

			must(t, repo.Reset(one))
			check("moved backwards", poll(), several.Hash.String(), false)
		})
	}
}
