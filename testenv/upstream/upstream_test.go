package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCServerSaysWhoAnswered(t *testing.T) {
	s := StartT(t, "A")
	if s.Port() == 0 || s.Host() != "127.0.0.1" {
		t.Fatalf("addr = %s", s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := testgrpc.NewTestServiceClient(dial(t, s.Addr()))

	var hdr metadata.MD
	octx := metadata.AppendToOutgoingContext(ctx, "x-request-id", "r1", "x-team", "blue")
	resp, err := c.UnaryCall(octx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetServerId() != "A" || resp.GetHostname() == "" {
		t.Fatalf("response = %v", resp)
	}
	if got := hdr.Get(HeaderUpstream); len(got) != 1 || got[0] != "A" {
		t.Fatalf("header %s = %v", HeaderUpstream, got)
	}
	if got := hdr.Get(HeaderUpstreamAddr); len(got) != 1 || got[0] != s.Addr() {
		t.Fatalf("header %s = %v", HeaderUpstreamAddr, got)
	}
	if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if s.Calls() != 2 || s.Failures() != 0 {
		t.Fatalf("calls=%d failures=%d", s.Calls(), s.Failures())
	}
	md, ok := s.FindMetadata("x-request-id", "r1")
	if !ok || md.Get("x-team")[0] != "blue" {
		t.Fatalf("FindMetadata = %v, %v", md, ok)
	}
	if len(s.Metadata()) != 2 || s.LastMetadata().Get("x-request-id") != nil {
		t.Fatalf("recorded = %v", s.Metadata())
	}
	if _, ok := s.FindMetadata("x-request-id", "nope"); ok {
		t.Fatal("found metadata never sent")
	}

	// A status requested by the client is returned and counted.
	_, err = c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "asked"}})
	if status.Code(err) != codes.NotFound || s.Failures() != 1 {
		t.Fatalf("err=%v failures=%d", err, s.Failures())
	}
	s.Reset()
	if s.Calls() != 0 || s.Failures() != 0 || s.LastMetadata() != nil {
		t.Fatal("Reset left state")
	}
}

func TestGRPCServerFailureAndDelay(t *testing.T) {
	s := StartT(t, "B")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := testgrpc.NewTestServiceClient(dial(t, s.Addr()))
	call := func() codes.Code {
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		return status.Code(err)
	}

	s.SetFailure(codes.Unavailable, 2)
	got := []codes.Code{call(), call(), call()}
	if got[0] != codes.Unavailable || got[1] != codes.Unavailable || got[2] != codes.OK {
		t.Fatalf("codes = %v", got)
	}
	s.SetFailure(codes.Internal, -1)
	for range 3 {
		if c := call(); c != codes.Internal {
			t.Fatalf("code = %v", c)
		}
	}
	s.SetFailure(codes.Internal, 0)
	if c := call(); c != codes.OK {
		t.Fatalf("code after clearing = %v", c)
	}
	if s.Calls() != 7 || s.Failures() != 5 {
		t.Fatalf("calls=%d failures=%d", s.Calls(), s.Failures())
	}

	// A share: 2 of every 5 calls fail, the first two of each run of five.
	s.SetFailureShare(codes.Internal, 2, 5)
	var share []codes.Code
	for range 10 {
		share = append(share, call())
	}
	want := []codes.Code{codes.Internal, codes.Internal, codes.OK, codes.OK, codes.OK, codes.Internal, codes.Internal, codes.OK, codes.OK, codes.OK}
	if fmt.Sprint(share) != fmt.Sprint(want) {
		t.Fatalf("2 of every 5: codes = %v, want %v", share, want)
	}
	s.SetFailureShare(codes.OK, 2, 5)
	if c := call(); c != codes.OK {
		t.Fatalf("code after clearing the share = %v", c)
	}

	s.SetDelay(200 * time.Millisecond)
	start := time.Now()
	if c := call(); c != codes.OK || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("code=%v after %v", c, time.Since(start))
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := c.UnaryCall(short, &testgrpc.SimpleRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v", err)
	}
}

func TestGRPCServerHealthAndClose(t *testing.T) {
	s, err := Start("C")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc := dial(t, s.Addr())
	h := healthpb.NewHealthClient(cc)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatus()
	}
	if st := check(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status = %v", st)
	}
	s.SetServing(false)
	if st := check(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("status = %v", st)
	}
	s.Close()
	s.Close()
	if _, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("after Close err = %v", err)
	}
}

func TestHTTPServer(t *testing.T) {
	s := StartHTTPT(t, "H")
	get := func() (*http.Response, HTTPResponse) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL()+"/a/b?x=1", nil)
		req.Host = "echo.example.com"
		req.Header.Set("X-Team", "blue")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var hr HTTPResponse
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &hr); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
		}
		return resp, hr
	}
	resp, hr := get()
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "H" {
		t.Fatalf("status=%d header=%v", resp.StatusCode, resp.Header)
	}
	if hr.Upstream != "H" || hr.Host != "echo.example.com" || hr.Path != "/a/b?x=1" || hr.Headers["X-Team"][0] != "blue" {
		t.Fatalf("body = %+v", hr)
	}
	if r := s.LastRequest(); r == nil || r.Header.Get("X-Team") != "blue" || r.URL.Path != "/a/b" {
		t.Fatalf("LastRequest = %v", r)
	}

	s.SetFailure(503, 1)
	if resp, _ := get(); resp.StatusCode != 503 || resp.Header.Get("X-Upstream") != "H" {
		t.Fatalf("injected: status=%d", resp.StatusCode)
	}
	if resp, _ := get(); resp.StatusCode != 200 {
		t.Fatalf("after injected: status=%d", resp.StatusCode)
	}
	if s.Calls() != 3 || s.Failures() != 1 || len(s.Requests()) != 3 {
		t.Fatalf("calls=%d failures=%d", s.Calls(), s.Failures())
	}
	s.SetDelay(100 * time.Millisecond)
	start := time.Now()
	if resp, _ := get(); resp.StatusCode != 200 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("delay: status=%d after %v", resp.StatusCode, time.Since(start))
	}
}
