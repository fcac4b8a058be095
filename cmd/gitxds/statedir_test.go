package main

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// Without --state-dir, serve keeps its state under $XDG_STATE_HOME, else
// ~/.local/state, else the user cache directory; never relative to the
// working directory (often the config repository). Given, the flag wins.
func TestDefaultStateDirOutsideTheRepository(t *testing.T) {
	noCache := func() (string, error) { return "", errors.New("no cache dir") }
	cache := func() (string, error) { return "/cache", nil }
	for _, tc := range []struct {
		env   map[string]string
		cache func() (string, error)
		want  string
	}{
		{map[string]string{"XDG_STATE_HOME": "/xdg/state", "HOME": "/home/u"}, noCache, "/xdg/state/gitxds"},
		{map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, noCache, "/home/u/.local/state/gitxds"},
		{map[string]string{"HOME": "/home/u"}, cache, "/home/u/.local/state/gitxds"},
		{map[string]string{}, cache, "/cache/gitxds"},
		{map[string]string{}, noCache, ""},
	} {
		got, err := defaultStateDir(func(k string) string { return tc.env[k] }, tc.cache)
		if got != filepath.FromSlash(tc.want) || (tc.want == "") != (err != nil) {
			t.Errorf("env %v: %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := serveFlags{repo: t.TempDir(), path: "overlays/dev", environ: []string{"XDG_STATE_HOME=/xdg/state", "HOME=/home/u"}}
	cfg, err := daemonConfig(f, log)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != filepath.FromSlash("/xdg/state/gitxds") {
		t.Errorf("StateDir %q without --state-dir", cfg.StateDir)
	}
	f.stateDir = "given"
	if cfg, _ = daemonConfig(f, log); cfg.StateDir != "given" {
		t.Errorf("StateDir %q with --state-dir given", cfg.StateDir)
	}
	if fl := newServe().Flags().Lookup("state-dir"); fl.DefValue != "" || !strings.Contains(fl.Usage, "XDG_STATE_HOME") {
		t.Errorf("--state-dir default %q, usage %q", fl.DefValue, fl.Usage)
	}
}
