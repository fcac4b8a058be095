// Package upstream runs upstream servers for tests, the demo and the scale
// harness: gRPC servers implementing grpc's interop TestService that say who
// answered, record the request metadata they saw and can be told to fail or
// to be slow; and HTTP/1.1 servers that do the same with an X-Upstream header.
//
// Nothing here depends on package testing; StartT and StartHTTPT add
// conveniences for tests on top.
package upstream

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Response headers every gRPC answer carries, besides SimpleResponse.ServerId.
const (
	// HeaderUpstream is the name of the upstream that answered.
	HeaderUpstream = "x-upstream"
	// HeaderUpstreamAddr is the listening address of the upstream that answered.
	HeaderUpstreamAddr = "x-upstream-addr"
)

// maxRecorded bounds how many requests a server remembers.
const maxRecorded = 1024

// Server is a gRPC upstream on 127.0.0.1 serving grpc.testing.TestService
// (UnaryCall and EmptyCall) and grpc.health.v1.Health. It is safe for
// concurrent use.
type Server struct {
	name     string
	hostname string
	lis      net.Listener
	srv      *grpc.Server
	health   *health.Server

	calls    atomic.Int64
	failures atomic.Int64

	mu       sync.Mutex
	failCode codes.Code
	failLeft int // > 0: that many more calls fail; < 0: all fail; 0: none
	// shareFail of every shareOf calls fail (SetFailureShare); shareN
	// counts the calls since.
	shareCode                  codes.Code
	shareFail, shareOf, shareN int
	delay                      time.Duration
	recorded                   []metadata.MD // newest last, at most maxRecorded

	closeOnce sync.Once
}

// Start starts a gRPC upstream named name on 127.0.0.1 with a free port.
func Start(name string) (*Server, error) { return StartOn(name, "127.0.0.1:0") }

// StartOn starts a gRPC upstream named name on addr (e.g. the address a
// Backend of the example repository points at).
func StartOn(name, addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: listen: %w", name, err)
	}
	host, _ := os.Hostname()
	s := &Server{
		name:     name,
		hostname: host,
		lis:      lis,
		srv:      grpc.NewServer(),
		health:   health.NewServer(),
	}
	testgrpc.RegisterTestServiceServer(s.srv, &testService{s: s})
	healthpb.RegisterHealthServer(s.srv, s.health)
	go s.srv.Serve(lis) //nolint:errcheck // returns when Close stops the server
	return s, nil
}

// Name is the name the server answers with.
func (s *Server) Name() string { return s.name }

// Addr is the listening address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Host is the listening IP, "127.0.0.1".
func (s *Server) Host() string { return s.lis.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (s *Server) Port() int { return s.lis.Addr().(*net.TCPAddr).Port }

// Close stops the server at once, failing calls in flight. Safe to call twice.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.health.Shutdown()
		s.srv.Stop()
	})
}

// SetFailure makes the next n calls fail with code (n < 0: every call until
// changed; n == 0 or code == codes.OK: no call fails).
func (s *Server) SetFailure(code codes.Code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == codes.OK {
		n = 0
	}
	s.failCode, s.failLeft = code, n
}

// SetFailureShare makes fail of every `of` calls fail with code, until
// changed: of each run of `of` calls, the first `fail` fail (e.g. 2, 5: the
// 1st and 2nd of every 5). fail <= 0 or code == codes.OK turns it off. A
// failure set by SetFailure comes first.
func (s *Server) SetFailureShare(code codes.Code, fail, of int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == codes.OK || fail <= 0 || of <= 0 {
		fail, of = 0, 0
	}
	s.shareCode, s.shareFail, s.shareOf, s.shareN = code, min(fail, of), of, 0
}

// SetDelay makes every call wait d before answering (or failing). A call whose
// context ends first returns the context's error as a status.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetServing sets the status grpc.health.v1.Health reports for the empty
// service name and for grpc.testing.TestService.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(testgrpc.TestService_ServiceDesc.ServiceName, st)
}

// Calls is the number of UnaryCall and EmptyCall requests received, failed
// ones included.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Failures is the number of calls answered with an error status (injected
// failures, statuses requested by the client, and deadlines hit in a delay).
func (s *Server) Failures() int64 { return s.failures.Load() }

// Reset zeroes the counters and forgets the recorded metadata. Failure and
// delay settings stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.Store(0)
	s.failures.Store(0)
	s.recorded = nil
}

// LastMetadata is a copy of the request metadata of the latest call, or nil
// when there was none. It includes HTTP/2 pseudo-headers such as :authority.
func (s *Server) LastMetadata() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recorded) == 0 {
		return nil
	}
	return s.recorded[len(s.recorded)-1].Copy()
}

// Metadata is a copy of the request metadata of the latest calls (at most
// 1024), oldest first.
func (s *Server) Metadata() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metadata.MD, len(s.recorded))
	for i, md := range s.recorded {
		out[i] = md.Copy()
	}
	return out
}

// FindMetadata returns the metadata of the latest recorded call whose key
// header has value, for tests that tag each request (e.g. x-request-id).
func (s *Server) FindMetadata(key, value string) (metadata.MD, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.recorded) - 1; i >= 0; i-- {
		for _, v := range s.recorded[i].Get(key) {
			if v == value {
				return s.recorded[i].Copy(), true
			}
		}
	}
	return nil, false
}

// begin records a call and returns the delay to apply and the injected
// failure, if any.
func (s *Server) begin(ctx context.Context) (time.Duration, error) {
	s.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recorded) == maxRecorded {
		copy(s.recorded, s.recorded[1:])
		s.recorded = s.recorded[:maxRecorded-1]
	}
	s.recorded = append(s.recorded, md.Copy())
	var err error
	if s.failLeft != 0 {
		if s.failLeft > 0 {
			s.failLeft--
		}
		err = status.Errorf(s.failCode, "upstream %s: injected failure", s.name)
	} else if s.shareOf > 0 {
		if s.shareN%s.shareOf < s.shareFail {
			err = status.Errorf(s.shareCode, "upstream %s: injected failure (%d of every %d calls)", s.name, s.shareFail, s.shareOf)
		}
		s.shareN++
	}
	return s.delay, err
}

// answer runs the shared part of every call: record, delay, fail, headers.
func (s *Server) answer(ctx context.Context, requested *testgrpc.EchoStatus) error {
	delay, err := s.begin(ctx)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.failures.Add(1)
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if err == nil && requested.GetCode() != 0 {
		err = status.Error(codes.Code(requested.GetCode()), requested.GetMessage())
	}
	who := metadata.Pairs(HeaderUpstream, s.name, HeaderUpstreamAddr, s.Addr())
	if err != nil {
		// A failure is a trailers-only response, as real servers answer
		// UNAVAILABLE: response headers would commit the RPC, and gRPC
		// never retries a committed RPC (gRFC A6).
		grpc.SetTrailer(ctx, who) //nolint:errcheck // best effort
		s.failures.Add(1)
		return err
	}
	grpc.SetHeader(ctx, who) //nolint:errcheck // best effort
	return nil
}

type testService struct {
	testgrpc.UnimplementedTestServiceServer
	s *Server
}

func (t *testService) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if err := t.s.answer(ctx, in.GetResponseStatus()); err != nil {
		return nil, err
	}
	// ServerId and Hostname are always filled, whatever FillServerId says:
	// saying who answered is what this server is for.
	return &testgrpc.SimpleResponse{ServerId: t.s.name, Hostname: t.s.hostname}, nil
}

func (t *testService) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	if err := t.s.answer(ctx, nil); err != nil {
		return nil, err
	}
	return &testgrpc.Empty{}, nil
}

// String is "name@127.0.0.1:PORT".
func (s *Server) String() string { return s.name + "@" + s.Addr() }
