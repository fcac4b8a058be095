package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler/status"
)

func newRollout() *cobra.Command {
	var admin, tokenFile string
	c := &cobra.Command{
		Use:   "rollout status|pause|resume|abort --admin URL",
		Short: "Show or control the rollout of a running gitxds serve",
		Long: `rollout talks to the admin API of a running server. status prints the rollout in
progress (stage, nodes, ACKs, gate values); pause holds it after the current stage; resume
lets it go on; abort rolls every node back to the last good version and records the revision
as failed (it is not retried until a new commit arrives).`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"status", "pause", "resume", "abort"},
		RunE: func(c *cobra.Command, args []string) error {
			base := strings.TrimRight(admin, "/")
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
			token := ""
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return ioErr(err)
				}
				token = strings.TrimSpace(string(b))
			}
			hc := &http.Client{Timeout: 10 * time.Second}
			switch args[0] {
			case "status":
				resp, err := hc.Get(base + "/status")
				if err != nil {
					return ioErr(err)
				}
				defer resp.Body.Close()
				var st status.Status
				if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
					return ioErr(fmt.Errorf("decode status: %w", err))
				}
				printRollout(c.OutOrStdout(), st)
				return nil
			case "pause", "resume", "abort":
				req, _ := http.NewRequest(http.MethodPost, base+"/rollout/"+args[0], nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := hc.Do(req)
				if err != nil {
					return ioErr(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode/100 != 2 {
					return &exitError{code: exitInvalid, err: fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))}
				}
				fmt.Fprintf(c.OutOrStdout(), "%s requested\n", args[0])
				return nil
			}
			return &exitError{code: exitUsage, err: fmt.Errorf("unknown action %q: want status, pause, resume or abort", args[0])}
		},
	}
	c.Flags().StringVar(&admin, "admin", "http://127.0.0.1:9400", "admin API address of gitxds serve")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file with the admin bearer token")
	return c
}

func printRollout(w io.Writer, st status.Status) {
	fmt.Fprintf(w, "attempted: %s\napplied:   %s\n", st.LastAttemptedRevision, st.LastAppliedRevision)
	if c := st.Get(status.Ready); c != nil {
		fmt.Fprintf(w, "ready:     %s (%s) %s\n", c.Status, c.Reason, c.Message)
	}
	ro := st.Rollout
	if ro == nil {
		fmt.Fprintln(w, "rollout:   none yet")
		return
	}
	fmt.Fprintf(w, "rollout:   %s %s (%s)\n", ro.Phase, ro.Revision, ro.Hash)
	if ro.FastPath != "" {
		fmt.Fprintf(w, "           fast path: %s\n", ro.FastPath)
	}
	if ro.Message != "" {
		fmt.Fprintf(w, "           %s\n", ro.Message)
	}
	for _, s := range ro.Stages {
		fmt.Fprintf(w, "  stage %-10s %-11s nodes=%d acked=%d", s.Name, s.Phase, len(s.Nodes), s.Acked)
		for _, g := range s.Gates {
			if g.Value != nil {
				fmt.Fprintf(w, " %s=%g(ok=%t)", g.Name, *g.Value, g.OK)
			} else if g.Error != "" {
				fmt.Fprintf(w, " %s=error(%s)", g.Name, g.Error)
			}
		}
		fmt.Fprintln(w)
	}
}
