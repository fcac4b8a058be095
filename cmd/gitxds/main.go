// Command gitxds is the GitOps control plane for Envoy API gateways: one
// binary for the daemon (serve) and the offline commands (render, validate,
// diff, preview, rollout).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes (docs/architecture.md §7).
const (
	exitOK      = 0
	exitInvalid = 1 // invalid config, or differences where asked
	exitUsage   = 2 // usage or I/O
)

// exitError carries an exit code to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func invalid(format string, args ...any) error {
	return &exitError{code: exitInvalid, err: fmt.Errorf(format, args...)}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "gitxds",
		Short:         "GitOps control plane for Envoy API gateways",
		Long:          "gitxds serves Gateway API resources kept in Git to Envoy proxies and proxyless gRPC clients over xDS,\nrolling changes out progressively and back by itself when they fail.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w\n\n%s", err, c.UsageString())}
	})
	root.AddCommand(newServe(), newRender(), newValidate(), newRollout(), newReconcile(), newGet(), newHistory(), newVersion())
	root.AddCommand(newDiff(), newPreview())
	root.AddCommand(newConvert())
	return root
}

func main() {
	err := newRoot().Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitxds:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the exit code for what a command returned: an error that
// carries none is cobra's (an unknown command, a missing required flag,
// arguments where none are taken), a usage error.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the gitxds version",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintln(c.OutOrStdout(), versionString())
		},
	}
}
