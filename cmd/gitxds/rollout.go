package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
)

// adminClient talks to the admin API of a running gitxds serve.
type adminClient struct {
	base, tokenFile string
	hc              *http.Client
}

func (a *adminClient) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&a.base, "admin", "http://127.0.0.1:9400", "admin API address of gitxds serve")
	c.PersistentFlags().StringVar(&a.tokenFile, "token-file", "", "file with the admin bearer token")
}

func (a *adminClient) url(path string) string {
	base := strings.TrimRight(a.base, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return base + path
}

func (a *adminClient) client() *http.Client {
	if a.hc == nil {
		a.hc = &http.Client{Timeout: 10 * time.Second}
	}
	return a.hc
}

func (a *adminClient) status(ctx context.Context) (status.Status, error) {
	var st status.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url("/status"), nil)
	if err != nil {
		return st, ioErr(err)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return st, ioErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, ioErr(fmt.Errorf("GET /status: %s", resp.Status))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, ioErr(fmt.Errorf("decode status: %w", err))
	}
	return st, nil
}

// post sends a mutating request: JSON, with the bearer token when given.
func (a *adminClient) post(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url(path), strings.NewReader("{}"))
	if err != nil {
		return ioErr(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return ioErr(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return ioErr(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))}
	}
	return nil
}

func newRollout() *cobra.Command {
	var a adminClient
	c := &cobra.Command{
		Use:   "rollout",
		Short: "Show or control the rollout of a running gitxds serve",
		Long: `rollout talks to the admin API of a running server:

  status   the rollout in progress or last finished: stages, nodes ACKed, bake left, gates
  pause    hold the rollout after the current stage
  resume   let a paused rollout go on
  abort    roll every node back to the last good version; the revision is recorded as
           failed and not retried until a new commit arrives`,
		Args: cobra.NoArgs,
	}
	a.register(c)
	var output string
	var watch bool
	st := &cobra.Command{
		Use:   "status [-o text|json] [-w]",
		Short: "Print the rollout: stages, nodes ACKed of those in each stage, bake left, gate values",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want text or json", output)}
			}
			ctx := c.Context()
			last := ""
			for {
				s, err := a.status(ctx)
				if err != nil {
					return err
				}
				var b bytes.Buffer
				if output == "json" {
					enc := json.NewEncoder(&b)
					enc.SetIndent("", "  ")
					_ = enc.Encode(s)
				} else {
					printRollout(&b, s, time.Now())
				}
				if b.String() != last {
					if watch && last != "" && output == "text" {
						fmt.Fprintf(c.OutOrStdout(), "--- %s\n", time.Now().Format("15:04:05"))
					}
					c.OutOrStdout().Write(b.Bytes())
					last = b.String()
				}
				if !watch || (s.Rollout != nil && s.Rollout.Phase.Final() && s.LastAttemptedRevision == s.Rollout.Revision) {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	st.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	st.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout until it finishes")
	_ = st.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	c.AddCommand(st)
	for _, action := range []struct {
		name  rollout.Action
		short string
	}{
		{rollout.Pause, "Hold the rollout after the current stage"},
		{rollout.Resume, "Let a paused rollout go on"},
		{rollout.Abort, "Roll every node back to the last good version and record the revision as failed"},
	} {
		c.AddCommand(&cobra.Command{
			Use:   string(action.name),
			Short: action.short,
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if err := a.post(c.Context(), "/rollout/"+string(action.name)); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s requested\n", action.name)
				return nil
			},
		})
	}
	return c
}

func printRollout(w io.Writer, st status.Status, now time.Time) {
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
	total := 0
	for _, s := range ro.Stages {
		total += s.Total()
		fmt.Fprintf(w, "  stage %-10s %-11s %d/%d node(s) ACKed", s.Name, s.Phase, s.Acked, s.Total())
		if s.Bake != "" {
			fmt.Fprintf(w, ", bake %s", s.Bake)
			if d, err := time.ParseDuration(s.Bake); err == nil && s.Phase == status.StageBaking && s.StartedAt != nil {
				fmt.Fprintf(w, " (at most %s left)", max(s.StartedAt.Add(d).Sub(now), 0).Round(time.Second))
			}
		}
		for _, g := range s.Gates {
			switch {
			case g.Error != "":
				fmt.Fprintf(w, ", %s: error (%s)", g.Name, g.Error)
			case g.Value != nil:
				fmt.Fprintf(w, ", %s=%g", g.Name, *g.Value)
				if g.Min != nil {
					fmt.Fprintf(w, " ≥ %g", *g.Min)
				}
				if g.Max != nil {
					fmt.Fprintf(w, " ≤ %g", *g.Max)
				}
				if !g.OK {
					fmt.Fprint(w, " FAILING")
				}
			}
		}
		fmt.Fprintln(w)
		if s.Warning != "" {
			fmt.Fprintf(w, "           warning: %s\n", s.Warning)
		}
	}
	if ro.Phase == status.RolloutSucceeded && ro.FastPath == "" && total == 0 {
		fmt.Fprintln(w, "warning:   no stage selected any node: no connected node has received this revision through a stage")
	}
}

func newReconcile() *cobra.Command {
	var a adminClient
	c := &cobra.Command{
		Use:   "reconcile",
		Short: "Ask a running gitxds serve to poll its repository now",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := a.post(c.Context(), "/reconcile"); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "reconcile requested")
			return nil
		},
	}
	a.register(c)
	return c
}
