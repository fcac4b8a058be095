package source

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/testenv/gitserver"
)

const (
	gatewaysV1 = "kind: Gateway\nmetadata:\n  name: edge\n"
	gatewaysV2 = "kind: Gateway\nmetadata:\n  name: edge-v2\n"
)

// newRepo serves a repository with one commit on main.
func newRepo(t *testing.T, opts gitserver.Options) (*gitserver.Server, *gitserver.Repo, string) {
	t.Helper()
	srv := gitserver.New(t, opts)
	repo, err := srv.CreateRepo("config")
	if err != nil {
		t.Fatal(err)
	}
	must(t, repo.WriteFiles(map[string]string{
		"platform/gateways.yaml": gatewaysV1,
		"teams/a/route.yaml":     "kind: HTTPRoute\n",
	}))
	sha, err := repo.Commit("first")
	if err != nil {
		t.Fatal(err)
	}
	return srv, repo, sha
}

// locations are the ways one repository can be named.
func locations(repo *gitserver.Repo) map[string]string {
	return map[string]string{
		"work-tree": repo.WorkDir(),
		"bare":      repo.BareDir(),
		"file":      "file://" + repo.BareDir(),
		"http":      repo.URL(),
	}
}

func TestPollAndFS(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"work-tree", "bare", "file", "http"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, repo, first := newRepo(t, gitserver.Options{})
			loc := locations(repo)[name]
			src := mustSource(t, Options{URL: loc, Ref: "main"})
			ctx := context.Background()

			rev, changed, err := src.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := "main@sha1:" + first; rev.String() != want || !changed {
				t.Fatalf("first poll: %s changed=%v, want %s changed=true", rev, changed, want)
			}
			wantFile(t, mustFS(t, src, rev), "/platform/gateways.yaml", gatewaysV1)

			again, changed, err := src.Poll(ctx)
			if err != nil || again != rev || changed {
				t.Fatalf("second poll: %s changed=%v err=%v, want %s unchanged", again, changed, err, rev)
			}

			must(t, repo.WriteFiles(map[string]string{"platform/gateways.yaml": gatewaysV2}))
			second, err := repo.Commit("second")
			if err != nil {
				t.Fatal(err)
			}
			moved, changed, err := src.Poll(ctx)
			if err != nil || moved.Hash.String() != second || !changed {
				t.Fatalf("poll after commit: %s changed=%v err=%v, want %s changed", moved, changed, err, second)
			}
			wantFile(t, mustFS(t, src, moved), "/platform/gateways.yaml", gatewaysV2)
			// The earlier revision stays readable.
			wantFile(t, mustFS(t, src, rev), "/platform/gateways.yaml", gatewaysV1)

			// Force-pushed back: a change again.
			must(t, repo.Reset(first))
			back, changed, err := src.Poll(ctx)
			if err != nil || back != rev || !changed {
				t.Fatalf("poll after reset: %s changed=%v err=%v, want %s changed", back, changed, err, rev)
			}
		})
	}
}

func TestPollFetchesOnlyWhenMoved(t *testing.T) {
	t.Parallel()
	srv, repo, _ := newRepo(t, gitserver.Options{})
	src := mustSource(t, Options{URL: repo.URL(), Ref: "main"})
	ctx := context.Background()

	first, _, err := src.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := srv.Counts(); c.UploadPack == 0 {
		t.Fatalf("first poll fetched nothing: %+v", c)
	}

	srv.ResetCounts()
	if _, changed, err := src.Poll(ctx); err != nil || changed {
		t.Fatalf("unchanged poll: changed=%v err=%v", changed, err)
	}
	if c := srv.Counts(); c != (gitserver.Counts{InfoRefs: 1}) {
		t.Errorf("unchanged poll made %+v, want one info/refs request and no upload-pack", c)
	}

	must(t, repo.WriteFiles(map[string]string{"platform/gateways.yaml": gatewaysV2}))
	if _, err := repo.Commit("second"); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	if _, changed, err := src.Poll(ctx); err != nil || !changed {
		t.Fatalf("poll after commit: changed=%v err=%v", changed, err)
	}
	if c := srv.Counts(); c.UploadPack != 1 {
		t.Errorf("poll after commit made %+v, want exactly one upload-pack", c)
	}

	// Back to a commit already held: no fetch either.
	must(t, repo.Reset(first.Hash.String()))
	srv.ResetCounts()
	if rev, changed, err := src.Poll(ctx); err != nil || !changed || rev != first {
		t.Fatalf("poll after reset: %s changed=%v err=%v", rev, changed, err)
	}
	if c := srv.Counts(); c.UploadPack != 0 {
		t.Errorf("poll back to a held commit made %+v, want no upload-pack", c)
	}
}

func TestPollMissingRef(t *testing.T) {
	t.Parallel()
	_, repo, _ := newRepo(t, gitserver.Options{})
	for name, loc := range locations(repo) {
		src := mustSource(t, Options{URL: loc, Ref: "nope"})
		_, _, err := src.Poll(context.Background())
		if !errors.Is(err, ErrRefNotFound) {
			t.Errorf("%s: err = %v, want ErrRefNotFound", name, err)
		}
	}

	empty, err := gitserver.New(t, gitserver.Options{}).CreateRepo("empty")
	if err != nil {
		t.Fatal(err)
	}
	for name, loc := range locations(empty) {
		src := mustSource(t, Options{URL: loc, Ref: "main"})
		if _, _, err := src.Poll(context.Background()); !errors.Is(err, ErrRefNotFound) {
			t.Errorf("empty repository, %s: err = %v, want ErrRefNotFound", name, err)
		}
	}
}

func TestPollUnreachable(t *testing.T) {
	t.Parallel()
	srv, repo, sha := newRepo(t, gitserver.Options{})
	src := mustSource(t, Options{URL: repo.URL(), Ref: "main", Timeout: 5 * time.Second})
	srv.Stop()
	if _, _, err := src.Poll(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("stopped server: err = %v, want ErrUnreachable", err)
	}
	must(t, srv.Start())
	rev, changed, err := src.Poll(context.Background())
	if err != nil || rev.Hash.String() != sha || !changed {
		t.Fatalf("after restart: %s changed=%v err=%v", rev, changed, err)
	}

	nothing := t.TempDir() + "/nothing"
	for _, loc := range []string{nothing, "file://" + nothing} {
		missing := mustSource(t, Options{URL: loc, Ref: "main"})
		if _, _, err := missing.Poll(context.Background()); !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: err = %v, want ErrUnreachable", loc, err)
		}
	}
}

func TestPollTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	src := mustSource(t, Options{URL: "http://" + ln.Addr().String() + "/config.git", Ref: "main", Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, _, err = src.Poll(context.Background())
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("poll took %s with a 300ms timeout", d)
	}
}

func TestPollAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "pa55-w0rd-s3cret"
	_, repo, sha := newRepo(t, gitserver.Options{User: user, Password: pass})
	withUser := func(u *url.Userinfo) string {
		parsed, err := url.Parse(repo.URL())
		if err != nil {
			t.Fatal(err)
		}
		parsed.User = u
		return parsed.String()
	}
	bad := map[string]Options{
		"no credentials":       {URL: repo.URL()},
		"wrong password (URL)": {URL: withUser(url.UserPassword(user, "wrong-"+pass))},
		"wrong password (Auth)": {URL: repo.URL(),
			Auth: &githttp.BasicAuth{Username: user, Password: "wrong-" + pass}},
		"token as user name": {URL: withUser(url.User("tok-" + pass))},
		"no such repository": {URL: strings.TrimSuffix(withUser(url.UserPassword(user, pass)), "config.git") + "other.git"},
	}
	for name, opts := range bad {
		opts.Ref = "main"
		src := mustSource(t, opts)
		_, _, err := src.Poll(context.Background())
		if !errors.Is(err, ErrAuth) {
			t.Errorf("%s: err = %v, want ErrAuth", name, err)
			continue
		}
		if strings.Contains(err.Error(), pass) {
			t.Errorf("%s: error text holds the password: %v", name, err)
		}
		if _, err := src.Resolve(context.Background(), "main"); err == nil || strings.Contains(err.Error(), pass) {
			t.Errorf("%s: Resolve err = %v, want an error without the password", name, err)
		}
	}

	good := map[string]Options{
		"URL":  {URL: withUser(url.UserPassword(user, pass))},
		"Auth": {URL: repo.URL(), Auth: &githttp.BasicAuth{Username: user, Password: pass}},
	}
	for name, opts := range good {
		opts.Ref = "main"
		src := mustSource(t, opts)
		rev, _, err := src.Poll(context.Background())
		if err != nil || rev.Hash.String() != sha {
			t.Errorf("%s: %s, %v", name, rev, err)
		}
		if strings.Contains(src.String(), pass) {
			t.Errorf("%s: String() holds the password: %s", name, src)
		}
	}
}

func TestPollTag(t *testing.T) {
	t.Parallel()
	_, repo, sha := newRepo(t, gitserver.Options{})
	must(t, repo.Tag("v1", "release one")) // annotated: must be peeled
	for name, loc := range locations(repo) {
		src := mustSource(t, Options{URL: loc, Ref: "v1"})
		rev, _, err := src.Poll(context.Background())
		if err != nil || rev.String() != "v1@sha1:"+sha {
			t.Errorf("%s: %s, %v", name, rev, err)
			continue
		}
		wantFile(t, mustFS(t, src, rev), "/teams/a/route.yaml", "kind: HTTPRoute\n")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustSource(t *testing.T, opts Options) *Source {
	t.Helper()
	src, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustFS(t *testing.T, src *Source, rev Revision) filesys.FileSystem {
	t.Helper()
	fsys, err := src.FS(context.Background(), rev)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func wantFile(t *testing.T, fsys filesys.FileSystem, name, want string) {
	t.Helper()
	got, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}
