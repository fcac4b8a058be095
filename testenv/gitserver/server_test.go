package gitserver

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeCloneAndCount(t *testing.T) {
	t.Parallel()
	srv := New(t, Options{})
	repo, err := srv.CreateRepo("config")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.WriteFiles(map[string]string{"platform/gateways.yaml": "kind: Gateway\n"}); err != nil {
		t.Fatal(err)
	}
	sha, err := repo.Commit("first")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag("v1", "release 1"); err != nil {
		t.Fatal(err)
	}
	if err := repo.PushRef("refs/pull/1/head"); err != nil {
		t.Fatal(err)
	}
	if got := srv.Counts(); got != (Counts{}) {
		t.Fatalf("pushes go to the bare repository directly, want no requests, got %+v", got)
	}

	// Protocol v0, as go-git speaks it: ls-remote is the ref advertisement alone.
	out, err := repo.Git("-c", "protocol.version=0", "ls-remote", repo.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{sha + "\trefs/heads/main", sha + "\trefs/pull/1/head", "refs/tags/v1^{}"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls-remote output lacks %q:\n%s", want, out)
		}
	}
	if got := srv.Counts(); got.InfoRefs != 1 || got.UploadPack != 0 {
		t.Errorf("after ls-remote: %+v, want 1 info/refs and no upload-pack", got)
	}

	clone := filepath.Join(t.TempDir(), "clone")
	if _, err := repo.Git("clone", "--quiet", "--depth=1", repo.URL(), clone); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(clone, "platform", "gateways.yaml"))
	if err != nil || string(data) != "kind: Gateway\n" {
		t.Fatalf("cloned file: %q, %v", data, err)
	}
	if got := srv.Counts(); got.UploadPack == 0 {
		t.Errorf("after clone: %+v, want an upload-pack request", got)
	}
	srv.ResetCounts()
	if got := srv.Counts(); got != (Counts{}) {
		t.Errorf("after ResetCounts: %+v", got)
	}
}

func TestDeterministicSHAs(t *testing.T) {
	t.Parallel()
	var shas [2]string
	for i := range shas {
		srv := New(t, Options{})
		repo, err := srv.CreateRepo("r")
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.WriteFiles(map[string]string{"a.txt": "a\n"}); err != nil {
			t.Fatal(err)
		}
		first, err := repo.Commit("one")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Revert(first); err != nil {
			t.Fatal(err)
		}
		if shas[i], err = repo.Head(); err != nil {
			t.Fatal(err)
		}
	}
	if shas[0] != shas[1] {
		t.Errorf("same operations gave different SHAs: %s, %s", shas[0], shas[1])
	}
}

func TestAuthAndStopStart(t *testing.T) {
	t.Parallel()
	srv := New(t, Options{User: "alice", Password: "s3cret"})
	repo, err := srv.CreateRepo("private")
	if err != nil {
		t.Fatal(err)
	}
	sha, err := repo.Commit("empty")
	if err != nil {
		t.Fatal(err)
	}
	withCreds := func(user, pass string) string {
		u, _ := url.Parse(repo.URL())
		u.User = url.UserPassword(user, pass)
		return u.String()
	}
	if _, err := repo.Git("ls-remote", withCreds("alice", "wrong")); err == nil {
		t.Fatal("ls-remote with a wrong password succeeded")
	}
	if got := srv.Counts(); got.Unauthorized == 0 || got.InfoRefs != 0 {
		t.Errorf("after a refused request: %+v", got)
	}
	out, err := repo.Git("ls-remote", withCreds("alice", "s3cret"), "refs/heads/main")
	if err != nil || !strings.HasPrefix(out, sha) {
		t.Fatalf("ls-remote with credentials: %q, %v", out, err)
	}

	before := srv.URL()
	srv.Stop()
	if _, err := repo.Git("ls-remote", withCreds("alice", "s3cret")); err == nil {
		t.Fatal("ls-remote on a stopped server succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if srv.URL() != before {
		t.Errorf("URL changed across Stop/Start: %s -> %s", before, srv.URL())
	}
	if _, err := repo.Git("ls-remote", withCreds("alice", "s3cret")); err != nil {
		t.Fatalf("ls-remote after Start: %v", err)
	}
}

func TestRepoPathsStayInside(t *testing.T) {
	t.Parallel()
	srv := New(t, Options{})
	repo, err := srv.CreateRepo("r")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../x", "/etc/passwd", ".git/config"} {
		if err := repo.WriteFiles(map[string]string{p: "x"}); err == nil {
			t.Errorf("WriteFiles(%q) succeeded", p)
		}
	}
	if _, err := srv.CreateRepo("r"); err == nil {
		t.Error("creating a repository twice succeeded")
	}
}

func TestCopyTreeRemoveBranch(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for name, content := range map[string]string{"platform/a.yaml": "a", "teams/x/b.yaml": "b", ".git/HEAD": "junk"} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := New(t, Options{})
	repo, err := srv.CreateRepo("layout")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.CopyTree(src, "config"); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("layout"); err != nil {
		t.Fatal(err)
	}
	ls := func(ref string) string {
		out, err := repo.Git("ls-tree", "-r", "--name-only", ref)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := ls("origin/main"), "config/platform/a.yaml\nconfig/teams/x/b.yaml"; got != want {
		t.Errorf("pushed tree:\n%s\nwant:\n%s", got, want)
	}
	if err := repo.Branch("release"); err != nil {
		t.Fatal(err)
	}
	if err := repo.Remove("config/teams"); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("drop teams"); err != nil {
		t.Fatal(err)
	}
	if got := ls("origin/main"); got != "config/platform/a.yaml" {
		t.Errorf("main after Remove: %q", got)
	}
	if got := ls("origin/release"); !strings.Contains(got, "config/teams/x/b.yaml") {
		t.Errorf("release branch moved: %q", got)
	}
	if err := repo.Checkout("release"); err != nil {
		t.Fatal(err)
	}
	if repo.CurrentBranch() != "release" {
		t.Errorf("CurrentBranch = %q", repo.CurrentBranch())
	}
}
