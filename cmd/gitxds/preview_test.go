package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gitxds.dev/gitxds/testenv/gitserver"
)

var update = flag.Bool("update", false, "rewrite the want.* sections of testdata/preview/*.txtar")

// prRef is where a case's head is published, as a forge publishes a pull
// request.
const prRef = "refs/pull/1/head"

// A case is testdata/preview/<case>.txtar. Its comment says what it shows;
// its head/<path> sections are the files the pull request writes over
// testdata/preview/base.txtar ("#remove" removes one). The test commits the
// base on main of a repository served by a real smart-HTTP Git server,
// commits the case on a branch, publishes it as refs/pull/1/head, and runs
// over the URL:
//
//	gitxds diff --from main --to refs/pull/1/head -o text|markdown|json --exit-code
//	gitxds preview --base main --head refs/pull/1/head -o markdown|json
//
// The want.* sections hold each output and want.exit the exit codes and
// what preview printed on stderr.
func TestPreviewGolden(t *testing.T) {
	srv := gitserver.New(t, gitserver.Options{})
	base := readArchive(t, "testdata/preview/base.txtar")
	paths, err := filepath.Glob("testdata/preview/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".txtar")
		if name == "base" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := readArchive(t, p)
			url := publishCase(t, srv, name, base, c).URL()
			repo := []string{"--repo", url, "--path", "overlays/prod"}
			got := map[string]string{}
			var exits []string
			for _, o := range []string{"text", "markdown", "json"} {
				out, _, code := runGitxds(t, append([]string{"diff", "--from", "main", "--to", prRef, "-o", o, "--exit-code"}, repo...)...)
				got["diff."+o] = out
				exits = append(exits, fmt.Sprintf("diff -o %s --exit-code: %d", o, code))
			}
			for _, o := range []string{"markdown", "json"} {
				out, stderr, code := runGitxds(t, append([]string{"preview", "--base", "main", "--head", prRef, "-o", o}, repo...)...)
				got["preview."+o] = out
				exits = append(exits, fmt.Sprintf("preview -o %s: %d", o, code))
				if o == "markdown" && stderr != "" {
					exits = append(exits, "preview stderr:\n"+stderr)
				}
			}
			got["exit"] = strings.Join(exits, "\n") + "\n"
			c.check(t, p, got)
		})
	}
}

// publishCase creates a repository with the base on main and the case on
// refs/pull/1/head; its work tree stays on branch pr.
func publishCase(t *testing.T, srv *gitserver.Server, name string, base, c *archive) *gitserver.Repo {
	t.Helper()
	r, err := srv.CreateRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, s := range base.sections {
		files[s.name] = s.data
	}
	mustDo(t, r.WriteFiles(files))
	_, err = r.Commit("base")
	mustDo(t, err)
	mustDo(t, r.Checkout("pr"))
	head := map[string]string{}
	for _, s := range c.sections {
		n, ok := strings.CutPrefix(s.name, "head/")
		switch {
		case !ok:
		case strings.TrimSpace(s.data) == "#remove":
			mustDo(t, r.Remove(n))
		default:
			head[n] = s.data
		}
	}
	mustDo(t, r.WriteFiles(head))
	_, err = r.Commit(name)
	mustDo(t, err)
	mustDo(t, r.PushRef(prRef))
	return r
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runGitxds runs gitxds in process and returns stdout, stderr (with the error
// main would print) and the exit code main would use.
func runGitxds(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&errb, "gitxds:", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

// archive is a parsed txtar file.
type archive struct {
	comment  string
	sections []section
}

type section struct{ name, data string }

func readArchive(t testing.TB, path string) *archive {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &archive{}
	var cur *section
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trim := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			a.sections = append(a.sections, section{name: strings.TrimSpace(trim[3 : len(trim)-3])})
			cur = &a.sections[len(a.sections)-1]
			continue
		}
		if cur == nil {
			a.comment += line
		} else {
			cur.data += line
		}
	}
	return a
}

var goldenOrder = []string{"exit", "diff.text", "diff.markdown", "diff.json", "preview.markdown", "preview.json"}

// check compares got with the want.* sections, or rewrites them.
func (a *archive) check(t *testing.T, path string, got map[string]string) {
	t.Helper()
	if *update {
		var b strings.Builder
		b.WriteString(a.comment)
		for _, s := range a.sections {
			if !strings.HasPrefix(s.name, "want.") {
				fmt.Fprintf(&b, "-- %s --\n%s", s.name, s.data)
			}
		}
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return rank(keys[i]) < rank(keys[j]) })
		for _, k := range keys {
			fmt.Fprintf(&b, "-- want.%s --\n%s", k, got[k])
		}
		mustDo(t, os.WriteFile(path, []byte(b.String()), 0o644))
		return
	}
	for _, k := range goldenOrder {
		var want string
		found := false
		for _, s := range a.sections {
			if s.name == "want."+k {
				want, found = s.data, true
			}
		}
		switch {
		case !found:
			t.Errorf("%s: no want.%s section (run go test ./cmd/gitxds -run Golden -update)", path, k)
		case want != got[k]:
			t.Errorf("%s: want.%s differs; run go test ./cmd/gitxds -run Golden -update and review the diff. Got:\n%s", path, k, got[k])
		}
	}
}

func rank(k string) int {
	for i, o := range goldenOrder {
		if o == k {
			return i
		}
	}
	return len(goldenOrder)
}
