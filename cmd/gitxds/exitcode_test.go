package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/testenv/stack"
)

// Exit 2 is for usage errors (a wrong flag, a --path that names no
// overlay, an -o value a command does not know), in every command alike;
// exit 1 stays for a configuration that is invalid.
func TestUsageErrorsExit2(t *testing.T) {
	r := echoRepo(t, stack.EchoRepo("127.0.0.1:7001", "127.0.0.1:7002"))
	dir := r.WorkDir()

	// --path naming no overlay: 2, saying which overlays there are.
	for _, args := range [][]string{
		{"validate", "--repo", dir, "--path", "overlays/nope"},
		{"render", "--repo", dir, "--path", "overlays/nope"},
		{"diff", "--repo", r.URL(), "--from", "main", "--to", "main", "--path", "overlays/nope"},
		{"preview", "--repo", r.URL(), "--base", "main", "--head", "main", "--skip-xds", "--path", "overlays/nope"},
	} {
		_, stderr, code := runGitxds(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "--path overlays/nope: no such directory in the repository (overlays next to it: overlays/dev)") {
			t.Errorf("%s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}

	// -o with a value the command does not know: 2, in every command that
	// has -o (each listed here with the flags it needs otherwise).
	withOutput := map[string][]string{
		"render":         {"--repo", dir, "--path", "overlays/dev"},
		"validate":       {"--repo", dir, "--path", "overlays/dev"},
		"diff":           {"--repo", dir, "--path", "overlays/dev", "--from", "main"},
		"preview":        {"--repo", dir, "--path", "overlays/dev", "--base", "main", "--head", "main"},
		"get":            {"revisions"},
		"history":        {},
		"rollout status": {},
	}
	for _, c := range commands(newRoot()) {
		if c.Flags().Lookup("output") == nil {
			continue
		}
		name := strings.TrimPrefix(c.CommandPath(), "gitxds ")
		extra, ok := withOutput[name]
		if !ok {
			t.Errorf("%s has -o: add it to this test", name)
			continue
		}
		args := append(append(strings.Fields(name), extra...), "-o", "bogus")
		if _, stderr, code := runGitxds(t, args...); code != exitUsage || !strings.Contains(stderr, `-o "bogus"`) {
			t.Errorf("%s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}

	// An unknown flag, in every command.
	for _, c := range commands(newRoot()) {
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "gitxds ")), "--no-such-flag")
		if _, stderr, code := runGitxds(t, args...); code != exitUsage || !strings.Contains(stderr, "unknown flag: --no-such-flag") {
			t.Errorf("%s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}

	// An unknown command, a missing required flag, arguments where none
	// are taken.
	for _, args := range [][]string{{"nope"}, {"validate", "--repo", dir}, {"validate", "--repo", dir, "--path", "overlays/dev", "extra"}} {
		if _, stderr, code := runGitxds(t, args...); code != exitUsage {
			t.Errorf("%s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}

	// The configuration is invalid: 1.
	if err := os.WriteFile(filepath.Join(dir, "teams/echo/routes.yaml"), []byte("kind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runGitxds(t, "validate", "--repo", dir, "--path", "overlays/dev"); code != exitInvalid {
		t.Errorf("validate of a malformed team file: exit %d, want 1\n%s", code, stderr)
	}
}

// commands are every runnable command below root.
func commands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range root.Commands() {
		if c.Runnable() && c.Name() != "help" && c.Name() != "completion" {
			out = append(out, c)
		}
		out = append(out, commands(c)...)
	}
	return out
}

// validate warns of a team directory the overlay does not deploy, on
// stderr and in -o json, and still exits 0: nothing is invalid.
func TestValidateWarnsOfAnUndeployedTeam(t *testing.T) {
	files := stack.EchoRepo("127.0.0.1:7001", "127.0.0.1:7002")
	files["teams/new/kustomization.yaml"] = "namespace: new\nresources: []\n"
	dir := echoRepo(t, files).WorkDir()
	const warning = "teams/new/ is not deployed by overlays/dev"
	stdout, stderr, code := runGitxds(t, "validate", "--repo", dir, "--path", "overlays/dev")
	if code != exitOK || !strings.Contains(stderr, "warning: "+warning) || strings.Contains(stdout, warning) {
		t.Errorf("validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, _, code = runGitxds(t, "validate", "--repo", dir, "--path", "overlays/dev", "-o", "json")
	if code != exitOK || !strings.Contains(stdout, `"warnings": [`+"\n    \""+warning) {
		t.Errorf("validate -o json: exit %d\n%s", code, stdout)
	}
}
