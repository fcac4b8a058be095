// Package ratelimit is a rate limit service for tests: it implements
// envoy.service.ratelimit.v3.RateLimitService (what Envoy's ratelimit
// filter calls) over gRPC on a loopback address, and counts requests in
// fixed windows (second, minute, hour, day) as Envoy's reference service
// (github.com/envoyproxy/ratelimit) does, from a configuration file of the
// same format: the one gitxds renders (gitxds render -o ratelimit).
//
// Matching follows the reference service: each entry of a descriptor
// selects, among the configured descriptors of its level, the one with
// its key and value, else the one with its key and no value (then every
// value is counted apart); the limit is that of the node the last entry
// reaches. A descriptor that reaches no limit is not limited.
package ratelimit

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	commonratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"
)

// Config is the configuration file: a domain and its descriptors.
type Config struct {
	Domain      string       `json:"domain"`
	Descriptors []Descriptor `json:"descriptors,omitempty"`
}

// Descriptor is one configured level: a key, a value (none: every value
// counted apart), the limit and the next level.
type Descriptor struct {
	Key         string       `json:"key"`
	Value       string       `json:"value,omitempty"`
	RateLimit   *Limit       `json:"rate_limit,omitempty"`
	Descriptors []Descriptor `json:"descriptors,omitempty"`
}

// Limit is requests per unit.
type Limit struct {
	Unit            string `json:"unit"`
	RequestsPerUnit uint32 `json:"requests_per_unit"`
}

// ParseConfig reads a configuration file strictly.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("rate limit config: %w", err)
	}
	if c.Domain == "" {
		return nil, fmt.Errorf("rate limit config: no domain")
	}
	var check func([]Descriptor) error
	check = func(ds []Descriptor) error {
		for _, d := range ds {
			if d.Key == "" {
				return fmt.Errorf("rate limit config: a descriptor without key")
			}
			if d.RateLimit != nil {
				if _, ok := units[strings.ToLower(d.RateLimit.Unit)]; !ok {
					return fmt.Errorf("rate limit config: unit %q", d.RateLimit.Unit)
				}
			}
			if err := check(d.Descriptors); err != nil {
				return err
			}
		}
		return nil
	}
	return c, check(c.Descriptors)
}

var units = map[string]struct {
	d    time.Duration
	unit ratelimitv3.RateLimitResponse_RateLimit_Unit
}{
	"second": {time.Second, ratelimitv3.RateLimitResponse_RateLimit_SECOND},
	"minute": {time.Minute, ratelimitv3.RateLimitResponse_RateLimit_MINUTE},
	"hour":   {time.Hour, ratelimitv3.RateLimitResponse_RateLimit_HOUR},
	"day":    {24 * time.Hour, ratelimitv3.RateLimitResponse_RateLimit_DAY},
}

// Service counts requests against a Config. Now is its clock (time.Now
// when nil); tests set it to step through windows without sleeping.
type Service struct {
	ratelimitv3.UnimplementedRateLimitServiceServer
	Now func() time.Time

	mu       sync.Mutex
	cfg      *Config
	counters map[string]uint32
	// Calls counts ShouldRateLimit calls.
	calls int
}

var _ ratelimitv3.RateLimitServiceServer = (*Service)(nil)

// New returns a service for cfg.
func New(cfg *Config) *Service {
	return &Service{cfg: cfg, counters: map[string]uint32{}}
}

// SetConfig replaces the configuration (as the reference service reloads
// its files); counters are kept.
func (s *Service) SetConfig(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

// Calls is how many requests the service has answered.
func (s *Service) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ShouldRateLimit counts each descriptor that reaches a limit and answers
// OVER_LIMIT when any is over.
func (s *Service) ShouldRateLimit(_ context.Context, req *ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	hits := req.GetHitsAddend()
	if hits == 0 {
		hits = 1
	}
	now := s.now()
	resp := &ratelimitv3.RateLimitResponse{OverallCode: ratelimitv3.RateLimitResponse_OK}
	for _, d := range req.GetDescriptors() {
		st := &ratelimitv3.RateLimitResponse_DescriptorStatus{Code: ratelimitv3.RateLimitResponse_OK}
		resp.Statuses = append(resp.Statuses, st)
		if req.GetDomain() != s.cfg.Domain {
			continue
		}
		lim, key, ok := s.match(d.GetEntries())
		if !ok {
			continue
		}
		u := units[strings.ToLower(lim.Unit)]
		window := now.Truncate(u.d)
		key = fmt.Sprintf("%s|%s|%d", req.GetDomain(), key, window.Unix())
		s.counters[key] += hits
		n := s.counters[key]
		st.CurrentLimit = &ratelimitv3.RateLimitResponse_RateLimit{RequestsPerUnit: lim.RequestsPerUnit, Unit: u.unit}
		st.DurationUntilReset = durationpb.New(window.Add(u.d).Sub(now))
		if n > lim.RequestsPerUnit {
			st.Code = ratelimitv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = ratelimitv3.RateLimitResponse_OVER_LIMIT
			continue
		}
		st.LimitRemaining = lim.RequestsPerUnit - n
	}
	return resp, nil
}

// match walks the configured descriptors along entries; it returns the
// limit of the node the last entry reaches and the counter's key.
func (s *Service) match(entries []*commonratelimitv3.RateLimitDescriptor_Entry) (*Limit, string, bool) {
	level := s.cfg.Descriptors
	var node *Descriptor
	var key []string
	for _, e := range entries {
		node = nil
		for i := range level {
			if level[i].Key == e.GetKey() && level[i].Value == e.GetValue() {
				node = &level[i]
				break
			}
		}
		if node == nil {
			for i := range level {
				if level[i].Key == e.GetKey() && level[i].Value == "" {
					node = &level[i]
					break
				}
			}
		}
		if node == nil {
			return nil, "", false
		}
		key = append(key, e.GetKey()+"="+e.GetValue())
		level = node.Descriptors
	}
	if node == nil || node.RateLimit == nil {
		return nil, "", false
	}
	return node.RateLimit, strings.Join(key, ","), true
}

// Server serves a Service over gRPC on a loopback address.
type Server struct {
	*Service
	Addr string
	srv  *grpc.Server
	lis  net.Listener
}

// Start serves svc on 127.0.0.1 on a free port.
func Start(svc *Service) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	ratelimitv3.RegisterRateLimitServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	return &Server{Service: svc, Addr: lis.Addr().String(), srv: srv, lis: lis}, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Stop() }
