package upstream

// TB is the part of testing.TB the conveniences use, so that this package
// does not import package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartT starts a gRPC upstream, fails t if it cannot, and closes it when
// the test ends.
func StartT(t TB, name string) *Server {
	t.Helper()
	s, err := Start(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartHTTPT starts an HTTP upstream, fails t if it cannot, and closes it
// when the test ends.
func StartHTTPT(t TB, name string) *HTTPServer {
	t.Helper()
	s, err := StartHTTP(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Close)
	return s
}
