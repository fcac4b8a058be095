package ratelimit

import (
	"context"
	"testing"
	"time"

	commonratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/translate"
)

// gitxdsConfig is the configuration gitxds renders for four rules: every
// request (2 per minute), each x-user apart (1 per second), clients of
// 10.0.0.0/8 together (1 per hour), and each subject of the gold tier's
// JWTs apart (1 per day).
func gitxdsConfig(t *testing.T) *Config {
	t.Helper()
	x := &ir.IR{Gateways: []ir.Gateway{{Listeners: []ir.Listener{{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{{
		GlobalRateLimit: &ir.GlobalRateLimit{Rules: []ir.GlobalRateLimitRule{
			{ID: "a/p/0", Requests: 2, Unit: ir.UnitMinute},
			{ID: "a/p/1", Headers: []ir.RateLimitHeader{{Name: "x-user", Distinct: true}}, Requests: 1, Unit: ir.UnitSecond},
			{ID: "a/p/2", SourceIPs: []ir.RateLimitSourceIP{{CIDR: "10.0.0.0/8"}}, Requests: 1, Unit: ir.UnitHour},
			{ID: "a/p/3", JWTClaims: []ir.RateLimitJWTClaim{{Provider: "corp", Claim: "tier", Value: "gold"}, {Provider: "corp", Claim: "sub", Distinct: true}}, Requests: 1, Unit: ir.UnitDay},
		}},
	}}}}}}}}}
	data, err := translate.RateLimitServiceConfig(x)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return cfg
}

func descriptor(kv ...string) *commonratelimitv3.RateLimitDescriptor {
	d := &commonratelimitv3.RateLimitDescriptor{}
	for i := 0; i < len(kv); i += 2 {
		d.Entries = append(d.Entries, &commonratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

// client dials a started service over gRPC on loopback.
func client(t *testing.T, svc *Service) ratelimitv3.RateLimitServiceClient {
	t.Helper()
	srv, err := Start(svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ratelimitv3.NewRateLimitServiceClient(conn)
}

// TestLimits sends the descriptors Envoy builds for gitxds's rules over
// gRPC and checks each rule's counting, with a clock stepped by hand.
func TestLimits(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	svc := New(gitxdsConfig(t))
	svc.Now = func() time.Time { return now }
	c := client(t, svc)
	ask := func(ds ...*commonratelimitv3.RateLimitDescriptor) ratelimitv3.RateLimitResponse_Code {
		t.Helper()
		resp, err := c.ShouldRateLimit(context.Background(), &ratelimitv3.RateLimitRequest{Domain: ir.RateLimitDomain, Descriptors: ds})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOverallCode()
	}
	const ok, over = ratelimitv3.RateLimitResponse_OK, ratelimitv3.RateLimitResponse_OVER_LIMIT

	// Every request: 2 per minute.
	every := descriptor("rule", "a/p/0")
	for i, want := range []ratelimitv3.RateLimitResponse_Code{ok, ok, over} {
		if got := ask(every); got != want {
			t.Fatalf("rule 0, request %d: %v, want %v", i+1, got, want)
		}
	}
	now = now.Add(time.Minute) // the next window
	if got := ask(every); got != ok {
		t.Errorf("rule 0 in the next minute: %v", got)
	}

	// Distinct header: each user apart.
	if got := ask(descriptor("rule", "a/p/1", "header:x-user", "alice")); got != ok {
		t.Errorf("alice's first: %v", got)
	}
	if got := ask(descriptor("rule", "a/p/1", "header:x-user", "bob")); got != ok {
		t.Errorf("bob's first, after alice's: %v", got)
	}
	if got := ask(descriptor("rule", "a/p/1", "header:x-user", "alice")); got != over {
		t.Errorf("alice's second in one second: %v", got)
	}

	// CIDR counted together: the masked address is the CIDR's.
	cidr := descriptor("rule", "a/p/2", "masked_remote_address", "10.0.0.0/8")
	if got := ask(cidr); got != ok {
		t.Errorf("first from 10/8: %v", got)
	}
	if got := ask(cidr); got != over {
		t.Errorf("second from 10/8: %v", got)
	}
	// Another range's masked address matches no configured value.
	if got := ask(descriptor("rule", "a/p/2", "masked_remote_address", "11.0.0.0/8")); got != ok {
		t.Errorf("11/8 is limited: %v", got)
	}
	// JWT claims: the tier must be gold, each subject counted apart.
	if got := ask(descriptor("rule", "a/p/3", "jwt:tier", "gold", "jwt:sub", "alice")); got != ok {
		t.Errorf("alice's first gold request: %v", got)
	}
	if got := ask(descriptor("rule", "a/p/3", "jwt:tier", "gold", "jwt:sub", "bob")); got != ok {
		t.Errorf("bob's first gold request: %v", got)
	}
	if got := ask(descriptor("rule", "a/p/3", "jwt:tier", "gold", "jwt:sub", "alice")); got != over {
		t.Errorf("alice's second gold request: %v", got)
	}
	if got := ask(descriptor("rule", "a/p/3", "jwt:tier", "silver", "jwt:sub", "alice")); got != ok {
		t.Errorf("a silver token is limited: %v", got)
	}
	// Unknown rules, a domain of another service, and a descriptor that
	// stops short of the limit's node are not limited.
	for i := 0; i < 3; i++ {
		if got := ask(descriptor("rule", "zz/none/0")); got != ok {
			t.Errorf("unknown rule limited: %v", got)
		}
		if got := ask(descriptor("rule", "a/p/1")); got != ok {
			t.Errorf("a descriptor without its header entry is limited: %v", got)
		}
	}
	resp, err := c.ShouldRateLimit(context.Background(), &ratelimitv3.RateLimitRequest{Domain: "other", Descriptors: []*commonratelimitv3.RateLimitDescriptor{every, every, every}})
	if err != nil || resp.GetOverallCode() != ok {
		t.Errorf("another domain: %v %v", resp.GetOverallCode(), err)
	}
}

// TestHitsAddend: a request may count for several hits.
func TestHitsAddend(t *testing.T) {
	svc := New(gitxdsConfig(t))
	svc.Now = func() time.Time { return time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC) }
	resp, err := client(t, svc).ShouldRateLimit(context.Background(), &ratelimitv3.RateLimitRequest{
		Domain: ir.RateLimitDomain, HitsAddend: 3,
		Descriptors: []*commonratelimitv3.RateLimitDescriptor{descriptor("rule", "a/p/0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOverallCode() != ratelimitv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("3 hits against 2 per minute: %v", resp.GetOverallCode())
	}
}

// TestParseConfigStrict: an unknown field or unit is an error.
func TestParseConfigStrict(t *testing.T) {
	for _, bad := range []string{
		"domain: d\ndescriptors: [{key: k, rate_limit: {unit: week, requests_per_unit: 1}}]\n",
		"domain: d\ndescriptors: [{key: k, extra: 1}]\n",
		"descriptors: []\n",
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
