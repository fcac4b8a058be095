package source

import (
	"context"
	"errors"
	"testing"

	"gitxds.dev/gitxds/testenv/gitserver"
)

// history is a repository with three commits on main, a lightweight and an
// annotated tag on the first, a pull-request ref and a feature branch.
type history struct {
	srv                        *gitserver.Server
	repo                       *gitserver.Repo
	first, second, third, pull string
}

func newHistory(t *testing.T) history {
	t.Helper()
	srv, repo, first := newRepo(t, gitserver.Options{})
	h := history{srv: srv, repo: repo, first: first}
	must(t, repo.Tag("v1", ""))
	must(t, repo.Tag("v1-annotated", "release one"))
	must(t, repo.WriteFiles(map[string]string{"platform/gateways.yaml": gatewaysV2}))
	var err error
	if h.second, err = repo.Commit("second"); err != nil {
		t.Fatal(err)
	}
	must(t, repo.WriteFiles(map[string]string{"teams/b/route.yaml": "kind: GRPCRoute\n"}))
	if h.third, err = repo.Commit("third"); err != nil {
		t.Fatal(err)
	}
	// A pull request: a commit on a branch that only refs/pull/1/head names.
	must(t, repo.Checkout("feature"))
	must(t, repo.WriteFiles(map[string]string{"teams/a/route.yaml": "kind: HTTPRoute # changed\n"}))
	if h.pull, err = repo.Commit("pr"); err != nil {
		t.Fatal(err)
	}
	must(t, repo.PushRef("refs/pull/1/head"))
	if _, err := repo.Git("push", "--quiet", "origin", "--delete", "feature"); err != nil {
		t.Fatal(err)
	}
	must(t, repo.Checkout("main"))
	return h
}

func TestResolve(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	cases := []struct {
		rev, want string
		file      string // a file the tree must hold
	}{
		{"main", "main@sha1:" + h.third, "/teams/b/route.yaml"},
		{"HEAD", "HEAD@sha1:" + h.third, "/teams/b/route.yaml"},
		{"refs/heads/main", "refs/heads/main@sha1:" + h.third, "/teams/b/route.yaml"},
		{"v1", "v1@sha1:" + h.first, "/platform/gateways.yaml"},
		{"v1-annotated", "v1-annotated@sha1:" + h.first, "/platform/gateways.yaml"},
		{"refs/pull/1/head", "refs/pull/1/head@sha1:" + h.pull, "/teams/a/route.yaml"},
		{h.third, "sha1:" + h.third, "/teams/b/route.yaml"},
		{h.second[:7], "sha1:" + h.second, "/platform/gateways.yaml"}, // no ref points to it
		{h.first, "sha1:" + h.first, "/platform/gateways.yaml"},
		{"main~1", "main~1@sha1:" + h.second, "/platform/gateways.yaml"},
	}
	for name, loc := range locations(h.repo) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mustSource(t, Options{URL: loc})
			for _, c := range cases {
				if name == "work-tree" && c.rev == "refs/pull/1/head" {
					continue // pushed to the server only
				}
				rev, err := src.Resolve(context.Background(), c.rev)
				if err != nil {
					t.Errorf("Resolve(%q): %v", c.rev, err)
					continue
				}
				if rev.String() != c.want {
					t.Errorf("Resolve(%q) = %s, want %s", c.rev, rev, c.want)
				}
				if _, err := mustFS(t, src, rev).ReadFile(c.file); err != nil {
					t.Errorf("FS(%s): %v", rev, err)
				}
			}
			for _, bad := range []string{"nope", "v9", "refs/pull/2/head", "deadbeef", "main~9"} {
				if rev, err := src.Resolve(context.Background(), bad); !errors.Is(err, ErrRefNotFound) {
					t.Errorf("Resolve(%q) = %s, %v; want ErrRefNotFound", bad, rev, err)
				}
			}
		})
	}
}

// FS of a revision the Source never fetched (parsed from saved state) fetches
// it, through its ref or, when the ref moved on, through all branches.
func TestFSOfRevisionNotFetched(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	ctx := context.Background()
	for _, s := range []string{"main@sha1:" + h.third, "main@sha1:" + h.second, "sha1:" + h.first} {
		rev, err := ParseRevision(s)
		if err != nil {
			t.Fatal(err)
		}
		src := mustSource(t, Options{URL: h.repo.URL(), Ref: "main"})
		if _, err := src.FS(ctx, rev); err != nil {
			t.Errorf("FS(%s): %v", rev, err)
		}
	}
	src := mustSource(t, Options{URL: h.repo.URL()})
	gone := Revision{Ref: "main", Hash: [20]byte{1, 2, 3}}
	if _, err := src.FS(ctx, gone); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("FS of a commit the remote lacks: %v, want ErrRefNotFound", err)
	}
}

// After a full fetch (a SHA no ref names), polling keeps working and still
// fetches only what moved.
func TestPollAfterResolve(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	ctx := context.Background()
	src := mustSource(t, Options{URL: h.repo.URL(), Ref: "main"})
	if _, _, err := src.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Resolve(ctx, h.second[:8]); err != nil {
		t.Fatal(err)
	}
	must(t, h.repo.WriteFiles(map[string]string{"platform/gateways.yaml": "kind: Gateway # 4\n"}))
	fourth, err := h.repo.Commit("fourth")
	if err != nil {
		t.Fatal(err)
	}
	h.srv.ResetCounts()
	rev, changed, err := src.Poll(ctx)
	if err != nil || !changed || rev.Hash.String() != fourth {
		t.Fatalf("poll: %s changed=%v err=%v, want %s", rev, changed, err, fourth)
	}
	if c := h.srv.Counts(); c.UploadPack != 1 {
		t.Errorf("poll made %+v, want one upload-pack", c)
	}
	wantFile(t, mustFS(t, src, rev), "/platform/gateways.yaml", "kind: Gateway # 4\n")
}

// A long-running poller drops old revisions once what it holds weighs more
// than MaxRepoSize, and keeps polling incrementally from the compacted,
// shallow storage.
func TestPollCompacts(t *testing.T) {
	t.Parallel()
	srv, repo, _ := newRepo(t, gitserver.Options{})
	ctx := context.Background()
	src := mustSource(t, Options{URL: repo.URL(), Ref: "main", MaxRepoSize: 8 << 10})
	var revs []Revision
	for i := range 12 {
		payload := make([]byte, 2<<10)
		for j := range payload {
			payload[j] = byte('a' + (i+j)%26)
		}
		must(t, repo.WriteFiles(map[string]string{"teams/a/data.txt": string(payload)}))
		if _, err := repo.Commit("grow"); err != nil {
			t.Fatal(err)
		}
		srv.ResetCounts()
		rev, changed, err := src.Poll(ctx)
		if err != nil || !changed {
			t.Fatalf("poll %d: changed=%v err=%v", i, changed, err)
		}
		wantFile(t, mustFS(t, src, rev), "/teams/a/data.txt", string(payload))
		revs = append(revs, rev)
	}
	var total int64
	for _, obj := range src.remote.sto.Objects {
		total += obj.Size()
	}
	if total > 2*(8<<10) {
		t.Errorf("storage holds %d bytes after compaction, limit 8 KiB", total)
	}
	// An old revision is fetched again on demand.
	if _, err := src.FS(ctx, revs[0]); err != nil {
		t.Errorf("FS of a compacted-away revision: %v", err)
	}
}
