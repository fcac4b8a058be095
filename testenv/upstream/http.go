package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPHeaderUpstream is the response header naming the HTTP upstream that
// answered.
const HTTPHeaderUpstream = "X-Upstream"

// HTTPResponse is the JSON body an HTTPServer answers with.
type HTTPResponse struct {
	Upstream string              `json:"upstream"`
	Method   string              `json:"method"`
	Host     string              `json:"host"`
	Path     string              `json:"path"`
	Headers  map[string][]string `json:"headers"`
}

// HTTPServer is an HTTP/1.1 upstream on 127.0.0.1. Every request, whatever
// its method and path, is answered with the header "X-Upstream: NAME" and an
// HTTPResponse JSON body, unless a failure is injected. It is safe for
// concurrent use.
type HTTPServer struct {
	name string
	lis  net.Listener
	srv  *http.Server

	calls    atomic.Int64
	failures atomic.Int64

	mu         sync.Mutex
	failStatus int
	failLeft   int
	delay      time.Duration
	recorded   []*http.Request // header-only clones, newest last

	closeOnce sync.Once
}

// StartHTTP starts an HTTP/1.1 upstream named name on 127.0.0.1 with a free
// port.
func StartHTTP(name string) (*HTTPServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("http upstream %s: listen: %w", name, err)
	}
	s := &HTTPServer{name: name, lis: lis}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(lis) //nolint:errcheck // returns http.ErrServerClosed after Close
	return s, nil
}

// Name is the name the server answers with.
func (s *HTTPServer) Name() string { return s.name }

// Addr is the listening address, "127.0.0.1:PORT".
func (s *HTTPServer) Addr() string { return s.lis.Addr().String() }

// Host is the listening IP, "127.0.0.1".
func (s *HTTPServer) Host() string { return s.lis.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (s *HTTPServer) Port() int { return s.lis.Addr().(*net.TCPAddr).Port }

// URL is "http://127.0.0.1:PORT".
func (s *HTTPServer) URL() string { return "http://" + s.Addr() }

// String is "name@127.0.0.1:PORT".
func (s *HTTPServer) String() string { return s.name + "@" + s.Addr() }

// Close stops the server at once. Safe to call twice.
func (s *HTTPServer) Close() {
	s.closeOnce.Do(func() { _ = s.srv.Close() })
}

// SetFailure makes the next n requests answer with HTTP status code (n < 0:
// every request until changed; n == 0 or code == 0: none). Failed answers
// still carry X-Upstream.
func (s *HTTPServer) SetFailure(code int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		n = 0
	}
	s.failStatus, s.failLeft = code, n
}

// SetDelay makes every request wait d before it is answered.
func (s *HTTPServer) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Calls is the number of requests received.
func (s *HTTPServer) Calls() int64 { return s.calls.Load() }

// Failures is the number of requests answered with an injected failure.
func (s *HTTPServer) Failures() int64 { return s.failures.Load() }

// Reset zeroes the counters and forgets the recorded headers.
func (s *HTTPServer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.Store(0)
	s.failures.Store(0)
	s.recorded = nil
}

// LastRequest is the latest request received (method, URL, Host and headers;
// no body), or nil.
func (s *HTTPServer) LastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recorded) == 0 {
		return nil
	}
	return s.recorded[len(s.recorded)-1]
}

// Requests are the latest requests received (at most 1024), oldest first.
func (s *HTTPServer) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.recorded...)
}

func (s *HTTPServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	rec := r.Clone(context.Background())
	rec.Body = http.NoBody
	s.mu.Lock()
	if len(s.recorded) == maxRecorded {
		copy(s.recorded, s.recorded[1:])
		s.recorded = s.recorded[:maxRecorded-1]
	}
	s.recorded = append(s.recorded, rec)
	delay, fail := s.delay, 0
	if s.failLeft != 0 {
		if s.failLeft > 0 {
			s.failLeft--
		}
		fail = s.failStatus
	}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set(HTTPHeaderUpstream, s.name)
	if fail != 0 {
		s.failures.Add(1)
		http.Error(w, fmt.Sprintf("upstream %s: injected failure", s.name), fail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(HTTPResponse{
		Upstream: s.name,
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.RequestURI(),
		Headers:  r.Header,
	})
}
