// Package xdsclient runs real gRPC-Go proxyless xDS clients, one per node id,
// against an xDS server: the third-party client of gitxds's end-to-end tests,
// demo and scale harness.
//
// Each Client has its own bootstrap (node id, metadata, server) and its own
// xds resolver builder, made with xds.NewXDSResolverWithConfigForTesting:
// gRPC reads GRPC_XDS_BOOTSTRAP_CONFIG once per process, so that is the only
// way to run many node ids in one process.
//
// Calls go to grpc.testing.TestService/UnaryCall, as served by package
// testenv/upstream, and report the ServerId of the upstream that answered.
//
// Every target a Client dials gets its own gRPC xDS client and so its own ADS
// stream (the testing resolver builder makes a new xDS client pool per
// ClientConn): a Client calling two targets shows up on the xDS server as two
// streams with the same node id.
package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/xds"

	"gitxds.dev/gitxds/reconciler/xdsbootstrap"
	"gitxds.dev/gitxds/testenv/upstream"
)

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 5 * time.Second

// Options configure a Client.
type Options struct {
	// ServerAddr is the xDS server, "host:port" (dialed with the passthrough
	// resolver) or a full gRPC target such as "dns:///xds.example:18000".
	ServerAddr string
	// NodeID is Node.id. Required.
	NodeID string
	// Cluster is Node.cluster (optional).
	Cluster string
	// Metadata become string fields of Node.metadata; gitxds reads them as
	// the node's labels (e.g. "rollout-group": "canary").
	Metadata map[string]string
	// Insecure selects insecure channel credentials to the xDS server and to
	// upstreams. It must be true: no other credentials are supported yet.
	Insecure bool
	// CallTimeout bounds calls whose context has no deadline;
	// DefaultCallTimeout when zero.
	CallTimeout time.Duration
	// DialOptions are added to the options of the shared conns (Conn),
	// e.g. a dialer for upstream addresses.
	DialOptions []grpc.DialOption
}

// Bootstrap returns the gRPC xDS bootstrap JSON for opts: one xDS server with
// insecure channel credentials and server_features ["xds_v3"], and the node.
// It can also be written to a file for a gRPC client in another process
// (GRPC_XDS_BOOTSTRAP).
func Bootstrap(opts Options) ([]byte, error) {
	if opts.ServerAddr == "" {
		return nil, errors.New("xdsclient: ServerAddr is required")
	}
	if opts.NodeID == "" {
		return nil, errors.New("xdsclient: NodeID is required")
	}
	if !opts.Insecure {
		return nil, errors.New("xdsclient: only insecure credentials are supported; set Options.Insecure")
	}
	uri := opts.ServerAddr
	if !strings.Contains(uri, "://") {
		uri = "passthrough:///" + uri
	}
	return xdsbootstrap.Insecure(uri, xdsbootstrap.Node{ID: opts.NodeID, Cluster: opts.Cluster, Metadata: opts.Metadata})
}

// Client is one proxyless gRPC xDS node. It is safe for concurrent use.
type Client struct {
	opts      Options
	bootstrap []byte
	builder   resolver.Builder

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn // by xDS target name
	closed bool
}

// New returns a Client for opts. It does not connect: the xDS stream for a
// target starts with the first Call, Conn or Connect for it.
func New(opts Options) (*Client, error) {
	bs, err := Bootstrap(opts)
	if err != nil {
		return nil, err
	}
	b, err := xds.NewXDSResolverWithConfigForTesting(bs)
	if err != nil {
		return nil, fmt.Errorf("xdsclient %s: resolver: %w", opts.NodeID, err)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	return &Client{opts: opts, bootstrap: bs, builder: b, conns: map[string]*grpc.ClientConn{}}, nil
}

// NodeID is the client's node id.
func (c *Client) NodeID() string { return c.opts.NodeID }

// Metadata is the client's node metadata (a copy).
func (c *Client) Metadata() map[string]string {
	out := make(map[string]string, len(c.opts.Metadata))
	for k, v := range c.opts.Metadata {
		out[k] = v
	}
	return out
}

// BootstrapJSON is the client's bootstrap.
func (c *Client) BootstrapJSON() []byte { return append([]byte(nil), c.bootstrap...) }

// targetName strips a leading "xds:///" so that "echo.example.com" and
// "xds:///echo.example.com" name the same conn.
func targetName(target string) string {
	return strings.TrimPrefix(target, "xds:///")
}

// Dial returns a new ClientConn to xds:///target using this client's
// bootstrap, owned by the caller (close it). Each such conn has its own xDS
// stream. opts are added after insecure credentials and the xds resolver.
func (c *Client) Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, errors.New("xdsclient: closed")
	}
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(c.builder),
	}, opts...)
	cc, err := grpc.NewClient("xds:///"+targetName(target), all...)
	if err != nil {
		return nil, fmt.Errorf("xdsclient %s: dial %s: %w", c.opts.NodeID, target, err)
	}
	return cc, nil
}

// Conn returns the client's shared ClientConn to xds:///target, creating it
// on first use. Do not close it; Close does.
func (c *Client) Conn(target string) (*grpc.ClientConn, error) {
	name := targetName(target)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("xdsclient: closed")
	}
	if cc, ok := c.conns[name]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient("xds:///"+name, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(c.builder)}, c.opts.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("xdsclient %s: dial %s: %w", c.opts.NodeID, target, err)
	}
	c.conns[name] = cc
	return cc, nil
}

// Connect makes the shared conn for target leave idle, which starts its xDS
// stream (LDS for target, then RDS, CDS, EDS) without sending an RPC. The
// node then shows up on the xDS server.
func (c *Client) Connect(target string) error {
	cc, err := c.Conn(target)
	if err != nil {
		return err
	}
	cc.Connect()
	return nil
}

// Result is what one call saw.
type Result struct {
	// ServerID is SimpleResponse.server_id: the name of the upstream.
	ServerID string
	// Hostname is SimpleResponse.hostname.
	Hostname string
	// Header and Trailer are the response metadata.
	Header, Trailer metadata.MD
}

// Invoke sends one UnaryCall with md as request metadata on the shared conn
// to target. A context without deadline gets Options.CallTimeout. Errors are
// gRPC status errors, unwrapped, so status.Code works on them.
func (c *Client) Invoke(ctx context.Context, target string, md map[string]string) (*Result, error) {
	cc, err := c.Conn(target)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	if len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(md))
	}
	var res Result
	resp, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx,
		&testgrpc.SimpleRequest{FillServerId: true},
		grpc.Header(&res.Header), grpc.Trailer(&res.Trailer))
	if err != nil {
		return nil, err
	}
	res.ServerID, res.Hostname = resp.GetServerId(), resp.GetHostname()
	return &res, nil
}

// Call sends one UnaryCall to xds:///target (target is "host" or
// "host:port", with or without the xds:/// prefix) and returns who answered.
func (c *Client) Call(ctx context.Context, target string, md map[string]string) (string, error) {
	res, err := c.Invoke(ctx, target, md)
	if err != nil {
		return "", err
	}
	return res.ServerID, nil
}

// WaitFor calls target until a call is answered by serverID
// (upstream.WaitAnsweredBy).
func (c *Client) WaitFor(ctx context.Context, target, serverID string, md map[string]string) error {
	return upstream.WaitAnsweredBy(ctx, c, "xdsclient "+c.opts.NodeID, target, serverID, md)
}

// Distribution sends n calls to target and counts who answered
// (upstream.Distribution).
func (c *Client) Distribution(ctx context.Context, target string, n int, md map[string]string) (map[string]int, error) {
	return upstream.Distribution(ctx, c, "xdsclient "+c.opts.NodeID, target, n, md)
}

// Close closes the client's shared conns, and so their xDS streams. Conns
// from Dial are the caller's to close.
func (c *Client) Close() error {
	c.mu.Lock()
	conns := c.conns
	c.conns, c.closed = nil, true
	c.mu.Unlock()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}
