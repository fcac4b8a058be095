// Package prom starts a real Prometheus server for tests: the `prometheus`
// binary (Debian package `prometheus`) on 127.0.0.1 with a free port, a
// generated configuration that scrapes the given targets every second, and a
// temporary storage directory removed by Close.
//
// Tests that need it call Require first: it skips the test when the binary
// is missing, unless GITXDS_REQUIRE_PROMETHEUS=1 (as CI sets it), in which
// case the test fails.
package prom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gitxds.dev/gitxds/testenv/syncbuf"
)

// EnvRequire, when "1", makes Require fail instead of skip.
const EnvRequire = "GITXDS_REQUIRE_PROMETHEUS"

// Options of a Prometheus server.
type Options struct {
	// Binary is the prometheus executable; "prometheus" on PATH when empty
	// (the Debian package installs /usr/bin/prometheus).
	Binary string
	// Targets are scraped as job "test" ("host:port", path /metrics).
	Targets []string
	// ScrapeInterval (default 1s).
	ScrapeInterval time.Duration
	// StartTimeout bounds the wait for /-/ready (default 30s).
	StartTimeout time.Duration
	// Config, when set, is the whole prometheus.yml (Targets and
	// ScrapeInterval are then unused).
	Config string
	// Log receives Prometheus' own output (default: kept in memory and
	// returned by Output).
	Log io.Writer
}

// Server is a running Prometheus.
type Server struct {
	// Addr is "127.0.0.1:PORT"; URL is "http://127.0.0.1:PORT".
	Addr, URL string

	cmd     *exec.Cmd
	dir     string
	out     *syncbuf.Buffer
	exited  chan struct{}
	exitErr error
	once    sync.Once
}

// Binary returns the path of the prometheus binary, or an error when it is
// not installed.
func Binary() (string, error) {
	return exec.LookPath("prometheus")
}

// TB is the part of testing.TB Require and StartT use.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Logf(format string, args ...any)
}

// Require returns the prometheus binary's path. When it is missing, it
// skips the test, or fails it when GITXDS_REQUIRE_PROMETHEUS=1.
func Require(t TB) string {
	t.Helper()
	bin, err := Binary()
	if err == nil {
		return bin
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("prometheus is required (%s=1) but not installed: %v; install the Debian package `prometheus` (.ci/run does)", EnvRequire, err)
	}
	t.Skipf("prometheus not installed (%v); set %s=1 to make this a failure", err, EnvRequire)
	return ""
}

// StartT is Require then Start; it fails t on error and closes the server
// when the test ends, logging Prometheus' output if the test failed.
func StartT(t TB, opts Options) *Server {
	t.Helper()
	bin := Require(t)
	if opts.Binary == "" {
		opts.Binary = bin
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		if f, ok := t.(interface{ Failed() bool }); ok && f.Failed() {
			t.Logf("prometheus output:\n%s", s.Output())
		}
		s.Close()
	})
	return s
}

// Start starts Prometheus and waits until it is ready. The context bounds
// the start only; Close stops the server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" {
		bin, err := Binary()
		if err != nil {
			return nil, fmt.Errorf("prom: %w", err)
		}
		opts.Binary = bin
	}
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	dir, err := os.MkdirTemp("", "gitxds-prom-")
	if err != nil {
		return nil, err
	}
	cfg := opts.Config
	if cfg == "" {
		cfg = Config(opts.Targets, opts.ScrapeInterval)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken between the probe and the bind: retry.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, opts, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// Config is the prometheus.yml of a server scraping targets.
func Config(targets []string, interval time.Duration) string {
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	return fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
scrape_configs:
- job_name: test
  static_configs:
  - targets: [%s]
`, interval, interval, interval, strings.Join(quoted, ", "))
}

func start(ctx context.Context, opts Options, dir string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	storage := filepath.Join(dir, fmt.Sprintf("data-%d", time.Now().UnixNano()))
	s := &Server{Addr: addr, URL: "http://" + addr, dir: dir, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	var out io.Writer = s.out
	if opts.Log != nil {
		out = io.MultiWriter(s.out, opts.Log)
	}
	s.cmd = exec.Command(opts.Binary,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+storage,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("prom: start %s: %w", opts.Binary, err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return nil, fmt.Errorf("prom: %w; output:\n%s", err, s.out.String())
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("prometheus exited before it was ready: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("prometheus on %s not ready: %w", s.Addr, ctx.Err())
		case <-t.C:
		}
	}
}

// Query runs an instant PromQL query and returns the raw "data" of the API
// answer.
func (s *Server) Query(ctx context.Context, q string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prom: query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prom: query %q: %s", q, body.Error)
	}
	return body.Data, nil
}

// WaitScraped waits until every target was scraped successfully (up == 1).
func (s *Server) WaitScraped(ctx context.Context, targets int) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last string
	for {
		data, err := s.Query(ctx, `count(up{job="test"} == 1)`)
		if err == nil {
			last = string(data)
			var v struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			}
			if json.Unmarshal(data, &v) == nil && len(v.Result) == 1 {
				if str, ok := v.Result[0].Value[1].(string); ok && str == fmt.Sprint(targets) {
					return nil
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prom: targets not scraped (last: %s): %w", last, ctx.Err())
		case <-t.C:
		}
	}
}

// Output is what Prometheus wrote so far.
func (s *Server) Output() string { return s.out.String() }

// Close stops Prometheus and removes its directory.
func (s *Server) Close() {
	s.once.Do(func() {
		s.kill()
		os.RemoveAll(s.dir)
	})
}

func (s *Server) kill() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
