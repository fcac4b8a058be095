// Package envoy runs a real Envoy proxy against a gitxds xDS server, for
// the tests that need the real thing (`go -C tools tool task -d .. test-envoy`).
//
// The binary is ENVOY_BIN, else `envoy` on PATH; tests call Require, which
// skips them when there is none. Each Proxy gets its own bootstrap (ADS
// over gRPC to the given xDS address, CDS and LDS over ADS, node id and
// metadata), an admin listener on a free loopback port, and a temporary
// directory removed by Close.
package envoy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitxds.dev/gitxds/testenv/syncbuf"
)

// EnvBin names the Envoy binary to use.
const EnvBin = "ENVOY_BIN"

// Binary is ENVOY_BIN, else envoy on PATH.
func Binary() (string, error) {
	if b := os.Getenv(EnvBin); b != "" {
		return b, nil
	}
	b, err := exec.LookPath("envoy")
	if err != nil {
		return "", fmt.Errorf("no Envoy: set %s or put envoy on PATH", EnvBin)
	}
	return b, nil
}

// TB is the part of testing.TB Require and StartT use.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Logf(format string, args ...any)
	Failed() bool
}

// Require returns the Envoy binary, or skips the test.
func Require(t TB) string {
	t.Helper()
	b, err := Binary()
	if err != nil {
		t.Skipf("%v", err)
	}
	return b
}

// Options of a Proxy.
type Options struct {
	// XDSAddr is gitxds's xDS server, "127.0.0.1:PORT".
	XDSAddr string
	// NodeID is Node.id (default "envoy-1").
	NodeID string
	// Metadata become string fields of Node.metadata (gitxds's labels).
	Metadata map[string]string
	// LogLevel of Envoy (default "warning").
	LogLevel string
}

// Proxy is a running Envoy.
type Proxy struct {
	// AdminURL is "http://127.0.0.1:PORT" of Envoy's admin listener.
	AdminURL string
	NodeID   string

	cmd    *exec.Cmd
	dir    string
	logs   *syncbuf.Buffer
	exited chan struct{}
	once   sync.Once
}

// Bootstrap is the Envoy bootstrap YAML for opts.
func Bootstrap(opts Options) (string, error) {
	host, port, err := net.SplitHostPort(opts.XDSAddr)
	if err != nil {
		return "", fmt.Errorf("envoy: xDS address %q: %w", opts.XDSAddr, err)
	}
	var md strings.Builder
	keys := make([]string, 0, len(opts.Metadata))
	for k := range opts.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&md, "%s: %s, ", strconv.Quote(k), strconv.Quote(opts.Metadata[k]))
	}
	return fmt.Sprintf(`node: {id: %s, cluster: gitxds-test, metadata: {%s}}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds}}]
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: %s, port_value: %s}}}
`, strconv.Quote(opts.NodeID), strings.TrimSuffix(md.String(), ", "), host, port), nil
}

// Start starts Envoy (bin) for opts and waits for its admin listener.
func Start(bin string, opts Options) (*Proxy, error) {
	if opts.NodeID == "" {
		opts.NodeID = "envoy-1"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warning"
	}
	bs, err := Bootstrap(opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gitxds-envoy-")
	if err != nil {
		return nil, err
	}
	bsPath, adminPath := filepath.Join(dir, "bootstrap.yaml"), filepath.Join(dir, "admin-address")
	if err := os.WriteFile(bsPath, []byte(bs), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Proxy{NodeID: opts.NodeID, dir: dir, logs: &syncbuf.Buffer{}, exited: make(chan struct{})}
	// A short drain time: a listener changed by a test drains its old
	// filter chains for 1 s, not 600.
	p.cmd = exec.Command(bin, "-c", bsPath, "--disable-hot-restart", "-l", opts.LogLevel,
		"--admin-address-path", adminPath, "--drain-time-s", "1")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("envoy: start %s: %w", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(adminPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
			p.AdminURL = "http://" + strings.TrimSpace(string(b))
			return p, nil
		}
		select {
		case <-p.exited:
			p.Close()
			return nil, fmt.Errorf("envoy exited at start:\n%s", p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Close()
			return nil, fmt.Errorf("envoy: no admin address after 30s:\n%s", p.Logs())
		}
	}
}

// StartT is Require then Start; it closes the proxy when the test ends
// and logs Envoy's output if the test failed.
func StartT(t TB, opts Options) *Proxy {
	t.Helper()
	p, err := Start(Require(t), opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Envoy log:\n%s", p.Logs())
		}
		p.Close()
	})
	return p
}

// Logs is what Envoy wrote so far.
func (p *Proxy) Logs() string { return p.logs.String() }

// Stat is the value of one counter or gauge from the admin's /stats.
func (p *Proxy) Stat(ctx context.Context, name string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.AdminURL+"/stats?filter=^"+name+"$", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("envoy: no stat %s in %q", name, b)
}

// Close stops Envoy and removes its directory.
func (p *Proxy) Close() {
	p.once.Do(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		os.RemoveAll(p.dir)
	})
}
