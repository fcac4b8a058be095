package fault

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echoServer echoes every line back, upper-cased.
func echoServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, strings.ToUpper(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return lis.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{c, bufio.NewReader(c)}
}

// roundTrip sends line and reads the answer within d.
func (c *conn) roundTrip(line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func TestProxyForwards(t *testing.T) {
	p := newProxy(t, echoServer(t))
	if p.Target() == "" || !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Fatalf("addr=%s target=%s", p.Addr(), p.Target())
	}
	c := dial(t, p.Addr())
	for _, in := range []string{"hello", "world"} {
		if got, err := c.roundTrip(in, time.Second); err != nil || got != strings.ToUpper(in) {
			t.Fatalf("roundTrip(%q) = %q, %v", in, got, err)
		}
	}
	if p.ActiveConns() != 1 || p.Accepted() != 1 {
		t.Fatalf("active=%d accepted=%d", p.ActiveConns(), p.Accepted())
	}
}

func TestProxyCutAndRestore(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("a", time.Second); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	// The open connection is gone.
	if _, err := c.roundTrip("b", time.Second); err == nil {
		t.Fatal("open connection survived Cut")
	} else if isTimeout(err) {
		t.Fatalf("open connection hung instead of failing: %v", err)
	}
	// New connections are reset at once.
	for range 3 {
		if err := failsFast(p.Addr()); err != nil {
			t.Fatalf("new connection during Cut: %v", err)
		}
	}
	waitFor(t, func() bool { return p.ActiveConns() == 0 })

	p.Restore()
	c3 := dial(t, p.Addr())
	if got, err := c3.roundTrip("d", time.Second); err != nil || got != "D" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
}

func TestProxyBlackhole(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("a", time.Second); err != nil {
		t.Fatal(err)
	}

	p.Blackhole()
	if _, err := c.roundTrip("held", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("open connection during Blackhole: err = %v, want timeout", err)
	}
	fresh := dial(t, p.Addr()) // accepted, but not forwarded
	if _, err := fresh.roundTrip("new", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during Blackhole: err = %v, want timeout", err)
	}

	p.Restore()
	// The held bytes go through, in order.
	c.SetDeadline(time.Now().Add(time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || got != "HELD\n" {
		t.Fatalf("held line after Restore = %q, %v", got, err)
	}
	fresh.SetDeadline(time.Now().Add(time.Second))
	if got, err := fresh.r.ReadString('\n'); err != nil || got != "NEW\n" {
		t.Fatalf("held connection after Restore = %q, %v", got, err)
	}
	if got, err := c.roundTrip("b", time.Second); err != nil || got != "B" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}

	// Cut during Blackhole drops what was held.
	p.Blackhole()
	before := p.Accepted()
	held := dial(t, p.Addr())
	waitFor(t, func() bool { return p.Accepted() == before+1 })
	p.Cut()
	if _, err := held.roundTrip("x", time.Second); err == nil || isTimeout(err) {
		t.Fatalf("held connection after Cut: err = %v", err)
	}
}

func TestProxyTargetDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	p := newProxy(t, addr)
	if err := failsFast(p.Addr()); err != nil {
		t.Fatalf("target down: %v", err)
	}
}

// TestProxyHTTP runs HTTP through the proxy, as the Git server tests will.
func TestProxyHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p := newProxy(t, srv.Listener.Addr().String())
	client := &http.Client{Timeout: time.Second}
	want := "ok"
	get := func() error {
		resp, err := client.Get("http://" + p.Addr() + "/info/refs")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			return errors.New("body " + string(b))
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if err := get(); err == nil {
		t.Fatal("GET through a cut proxy succeeded")
	}
	p.Restore()
	if err := get(); err != nil {
		t.Fatal(err)
	}

	// The server "restarts" elsewhere.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok2")
	}))
	defer srv2.Close()
	p.SetTarget(srv2.Listener.Addr().String())
	p.Cut() // drop the kept-alive connection to the old server
	p.Restore()
	want = "ok2"
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if p.Target() != srv2.Listener.Addr().String() {
		t.Fatalf("Target = %s", p.Target())
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("proxy still listening after Close")
	}
}

// failsFast checks that a connection to addr fails at once: the dial or the
// first round trip is reset (the reset may beat the dial's return on
// loopback). It returns an error when it does not.
func failsFast(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	cc := &conn{c, bufio.NewReader(c)}
	_, err = cc.roundTrip("x", time.Second)
	switch {
	case err == nil:
		return errors.New("round trip succeeded")
	case isTimeout(err):
		return fmt.Errorf("hung instead of failing: %w", err)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 2s")
		}
	}
}
