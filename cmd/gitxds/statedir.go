package main

import (
	"errors"
	"path/filepath"
)

// stateDirUsage is --state-dir's help: the default depends on the
// environment, so help names the rule rather than one machine's path.
const stateDirUsage = "directory for the last good snapshot and the rollout state (default $XDG_STATE_HOME/gitxds, else ~/.local/state/gitxds; outside the repository)"

// defaultStateDir is --state-dir when it is not given: $XDG_STATE_HOME/gitxds
// (the XDG base directory for state that survives restarts; a relative
// value is ignored, as the specification says), else
// $HOME/.local/state/gitxds (XDG's default for it), else the user cache
// directory of the platform. Never a directory relative to the working
// directory, which is often the config repository itself. getenv is
// os.Getenv (tests pass their own); userCacheDir is os.UserCacheDir.
func defaultStateDir(getenv func(string) string, userCacheDir func() (string, error)) (string, error) {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "gitxds"), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "gitxds"), nil
	}
	if d, err := userCacheDir(); err == nil && filepath.IsAbs(d) {
		return filepath.Join(d, "gitxds"), nil
	}
	return "", errors.New("--state-dir: no default without $XDG_STATE_HOME or $HOME; pass --state-dir (or GITXDS_STATE_DIR)")
}
