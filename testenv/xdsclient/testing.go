package xdsclient

// TB is the part of testing.TB the conveniences use, so that this package
// does not import package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewT is New for tests: it fails t on error and closes the client when the
// test ends. Insecure is forced on.
func NewT(t TB, opts Options) *Client {
	t.Helper()
	opts.Insecure = true
	c, err := New(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewFleetT is NewFleet for tests: it fails t on error and closes the fleet
// when the test ends. Insecure is forced on.
func NewFleetT(t TB, base Options, members []Member) *Fleet {
	t.Helper()
	base.Insecure = true
	f, err := NewFleet(base, members)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}
