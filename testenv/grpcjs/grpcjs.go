// Package grpcjs runs a real proxyless xDS client written on Node's
// @grpc/grpc-js-xds (client.js in this directory, versions pinned by its
// package-lock.json): a second xDS client implementation beside gRPC-Go
// (package testenv/xdsclient), so that the end-to-end tests hold for both.
//
// One Client is one Node process and one xDS node id. Its methods mirror
// xdsclient.Client's (Call, WaitFor, Distribution), and a failed call
// returns a gRPC status error, so that status.Code works on it.
//
// Tests call Require first (NewT does): it skips the test when node or
// this directory's node_modules is missing, unless GITXDS_REQUIRE_GRPCJS=1
// (as .ci/run sets it after `npm ci`), in which case the test fails.
package grpcjs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler/xdsbootstrap"
	"gitxds.dev/gitxds/testenv/upstream"
)

// EnvRequire, when "1", makes Require fail instead of skip.
const EnvRequire = "GITXDS_REQUIRE_GRPCJS"

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 5 * time.Second

// Dir is this package's directory (client.js, package.json,
// node_modules).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Available returns the node binary, or why the client cannot run.
func Available() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "@grpc", "grpc-js-xds", "package.json")); err != nil {
		return "", fmt.Errorf("@grpc/grpc-js-xds is not installed: run `npm ci` in %s (%v)", Dir(), err)
	}
	return node, nil
}

// TB is the part of testing.TB Require and NewT use.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Logf(format string, args ...any)
}

// Require returns the node binary. When node or node_modules is missing,
// it skips the test, or fails it when GITXDS_REQUIRE_GRPCJS=1.
func Require(t TB) string {
	t.Helper()
	node, err := Available()
	if err == nil {
		return node
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("grpc-js-xds is required (%s=1) but cannot run: %v", EnvRequire, err)
	}
	t.Skipf("grpc-js-xds client unavailable (%v); set %s=1 to make this a failure", err, EnvRequire)
	return ""
}

// Options of a Client.
type Options struct {
	// ServerAddr is the xDS server, "host:port".
	ServerAddr string
	// NodeID is Node.id. Required.
	NodeID string
	// Metadata become string fields of Node.metadata (gitxds's labels).
	Metadata map[string]string
	// CallTimeout bounds calls whose context has no deadline;
	// DefaultCallTimeout when zero.
	CallTimeout time.Duration
}

// Bootstrap is the xDS bootstrap JSON of opts: one xDS server with
// insecure channel credentials and server_features ["xds_v3"], and the
// node (with an empty locality: grpc-js-xds refuses a node without one).
func Bootstrap(opts Options) ([]byte, error) {
	if opts.ServerAddr == "" || opts.NodeID == "" {
		return nil, errors.New("grpcjs: ServerAddr and NodeID are required")
	}
	return xdsbootstrap.Insecure(opts.ServerAddr, xdsbootstrap.Node{ID: opts.NodeID, Metadata: opts.Metadata, Locality: &struct{}{}})
}

// Client is one client.js process. It is safe for concurrent use.
type Client struct {
	opts  Options
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when stdout ends
	out   *tail         // the process's stderr, for errors

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan answer
	err     error // why the process ended
}

type command struct {
	ID        int64             `json:"id"`
	Target    string            `json:"target,omitempty"`
	Connect   string            `json:"connect,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	TimeoutMS int64             `json:"timeoutMs,omitempty"`
}

type answer struct {
	ID       int64  `json:"id"`
	Ready    bool   `json:"ready"`
	OK       bool   `json:"ok"`
	ServerID string `json:"serverId"`
	Code     int    `json:"code"`
	Details  string `json:"details"`
	Error    string `json:"error"`
}

// Start starts client.js with node for opts and waits until it reads
// commands.
func Start(node string, opts Options) (*Client, error) {
	bs, err := Bootstrap(opts)
	if err != nil {
		return nil, err
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	cmd := exec.Command(node, filepath.Join(Dir(), "client.js"))
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+string(bs))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, cmd: cmd, stdin: stdin, done: make(chan struct{}), out: &tail{}, pending: map[int64]chan answer{}}
	cmd.Stderr = c.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("grpcjs: start node: %w", err)
	}
	ready := make(chan struct{})
	go c.read(stdout, ready)
	select {
	case <-ready:
		return c, nil
	case <-c.done:
		_ = cmd.Wait()
		return nil, fmt.Errorf("grpcjs: client.js ended before it was ready: %s", c.out.String())
	case <-time.After(30 * time.Second):
		c.Close()
		return nil, fmt.Errorf("grpcjs: client.js not ready after 30s: %s", c.out.String())
	}
}

// NewT is Require then Start for tests: it closes the client when the
// test ends.
func NewT(t TB, opts Options) *Client {
	t.Helper()
	node := Require(t)
	c, err := Start(node, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (c *Client) read(stdout io.Reader, ready chan struct{}) {
	defer close(c.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			continue
		}
		if a.Ready {
			close(ready)
			continue
		}
		c.mu.Lock()
		ch := c.pending[a.ID]
		delete(c.pending, a.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("grpcjs: client.js ended: %s", c.out.String())
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// NodeID is the client's node id.
func (c *Client) NodeID() string { return c.opts.NodeID }

func (c *Client) send(ctx context.Context, cmd command) (answer, error) {
	ch := make(chan answer, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return answer{}, c.err
	}
	c.nextID++
	cmd.ID = c.nextID
	c.pending[cmd.ID] = ch
	b, _ := json.Marshal(cmd)
	_, err := c.stdin.Write(append(b, '\n'))
	c.mu.Unlock()
	if err != nil {
		return answer{}, fmt.Errorf("grpcjs: write command: %w", err)
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return answer{}, c.err
		}
		return a, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, cmd.ID)
		c.mu.Unlock()
		return answer{}, status.FromContextError(ctx.Err()).Err()
	}
}

// Connect starts the xDS watches for target without a call: the node then
// shows up on the xDS server.
func (c *Client) Connect(target string) error {
	_, err := c.send(context.Background(), command{Connect: strings.TrimPrefix(target, "xds:///")})
	return err
}

// Call sends one UnaryCall to xds:///target with md as request metadata
// and returns who answered. Errors are gRPC status errors.
func (c *Client) Call(ctx context.Context, target string, md map[string]string) (string, error) {
	timeout := c.opts.CallTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return "", status.FromContextError(context.DeadlineExceeded).Err()
	}
	// The Go side waits a little longer than the call's deadline, so that
	// the client's own DEADLINE_EXCEEDED is what comes back.
	wctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	a, err := c.send(wctx, command{Target: strings.TrimPrefix(target, "xds:///"), Metadata: md, TimeoutMS: timeout.Milliseconds()})
	if err != nil {
		return "", err
	}
	if !a.OK {
		return "", status.Error(codes.Code(a.Code), a.Details)
	}
	return a.ServerID, nil
}

// WaitFor calls target until a call is answered by serverID
// (upstream.WaitAnsweredBy).
func (c *Client) WaitFor(ctx context.Context, target, serverID string, md map[string]string) error {
	return upstream.WaitAnsweredBy(ctx, c, "grpcjs "+c.opts.NodeID, target, serverID, md)
}

// Distribution sends n calls to target and counts who answered
// (upstream.Distribution).
func (c *Client) Distribution(ctx context.Context, target string, n int, md map[string]string) (map[string]int, error) {
	return upstream.Distribution(ctx, c, "grpcjs "+c.opts.NodeID, target, n, md)
}

// Close ends the process (closing stdin ends client.js) and waits for it.
func (c *Client) Close() error {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
	}
	_ = c.cmd.Wait()
	return nil
}

// tail keeps the last 8 KB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
