package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/golden"
)

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
// The want.* sections (golden, rewritten by -update) hold each output and
// want.exit the exit codes and what preview printed on stderr.
func TestPreviewGolden(t *testing.T) {
	srv := gitserver.New(t, gitserver.Options{})
	golden.Cases(t, "testdata/preview", func(t *testing.T, name string, base, c *golden.Archive) {
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
		for _, k := range goldenOrder {
			c.Check(k, []byte(got[k]))
		}
	})
}

// publishCase creates a repository with the base on main and the case on
// refs/pull/1/head; its work tree stays on branch pr.
func publishCase(t *testing.T, srv *gitserver.Server, name string, base, c *golden.Archive) *gitserver.Repo {
	t.Helper()
	r, err := srv.CreateRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, s := range base.Files {
		files[s.Name] = string(s.Data)
	}
	mustDo(t, r.WriteFiles(files))
	_, err = r.Commit("base")
	mustDo(t, err)
	mustDo(t, r.Checkout("pr"))
	head := map[string]string{}
	for _, s := range c.Files {
		n, ok := strings.CutPrefix(s.Name, "head/")
		switch {
		case !ok:
		case strings.TrimSpace(string(s.Data)) == "#remove":
			mustDo(t, r.Remove(n))
		default:
			head[n] = string(s.Data)
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

// goldenOrder are the want sections of a case, in order.
var goldenOrder = []string{"exit", "diff.text", "diff.markdown", "diff.json", "preview.markdown", "preview.json"}
