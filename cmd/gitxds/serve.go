package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/source"
)

type serveFlags struct {
	repo, ref, path          string
	interval                 time.Duration
	xdsAddr, adminAddr       string
	stateDir                 string
	logFormat                string
	adminTokenFile           string
	maxFileSize, maxRepoSize int64
}

func newServe() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve --repo URL|PATH --ref BRANCH --path OVERLAY --interval D --xds-address HOST:PORT --admin-address HOST:PORT --state-dir DIR",
		Short: "Run the control plane: poll Git, serve xDS, roll changes out",
		Long: `serve polls --ref of --repo every --interval (ls-remote first, a shallow fetch only when
the branch moved), builds the --path overlay, and rolls what changed out to the xDS nodes
connected on --xds-address, as the platform's RolloutPolicy says. The last good snapshot
and the rollout state live in --state-dir: after a restart nodes get the last good config at
once, even with Git unreachable. Status, metrics and controls are on --admin-address.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return serve(c.Context(), f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.repo, "repo", "", "repository: a local path, or a file://, http(s):// or ssh:// URL")
	fl.StringVar(&f.ref, "ref", "main", "branch to follow")
	fl.StringVar(&f.path, "path", "", "overlay directory inside the repository, e.g. overlays/production")
	fl.DurationVar(&f.interval, "interval", time.Minute, "how often to poll the repository")
	fl.StringVar(&f.xdsAddr, "xds-address", "127.0.0.1:18000", "address of the xDS (ADS) gRPC server")
	fl.StringVar(&f.adminAddr, "admin-address", "127.0.0.1:9400", "address of the admin HTTP API")
	fl.StringVar(&f.stateDir, "state-dir", "gitxds-state", "directory for the last good snapshot and the rollout state")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file with a bearer token required by mutating admin endpoints")
	fl.Int64Var(&f.maxFileSize, "max-file-size", 0, "largest file read from the repository in bytes (default 1 MiB)")
	fl.Int64Var(&f.maxRepoSize, "max-repo-size", 0, "largest repository tree in bytes (default 64 MiB)")
	_ = c.MarkFlagRequired("repo")
	_ = c.MarkFlagRequired("path")
	return c
}

func newLogger(format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
	}
	return nil, &exitError{code: exitUsage, err: fmt.Errorf("--log-format %q: want text or json", format)}
}

func serve(ctx context.Context, f serveFlags) error {
	log, err := newLogger(f.logFormat)
	if err != nil {
		return err
	}
	token := ""
	if f.adminTokenFile != "" {
		b, err := os.ReadFile(f.adminTokenFile)
		if err != nil {
			return ioErr(err)
		}
		token = string(trimSpace(b))
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, daemon.Config{
		Repo: f.repo, Ref: f.ref, Path: f.path, Interval: f.interval,
		XDSAddress: f.xdsAddr, AdminAddress: f.adminAddr, StateDir: f.stateDir, AdminToken: token,
		Limits: source.Limits{MaxFileSize: f.maxFileSize, MaxRepoSize: f.maxRepoSize}, Log: log,
	})
	if err != nil {
		return ioErr(err)
	}
	err = d.Wait(ctx)
	log.Info("stopped")
	if err != nil {
		return ioErr(err)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
