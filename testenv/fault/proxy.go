// Package fault injects network faults for tests: a TCP proxy in front of a
// server (the Git server, the xDS server, an upstream) that can cut every
// connection, refuse new ones, or hold all traffic like a network partition.
package fault

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

type mode int

const (
	modePass mode = iota
	modeCut
	modeBlackhole
)

// Proxy is a TCP proxy on 127.0.0.1 forwarding every connection to a target.
// It is safe for concurrent use.
type Proxy struct {
	target string
	lis    net.Listener

	mu       sync.Mutex
	cond     *sync.Cond // signalled when mode changes or the proxy closes
	mode     mode
	closed   bool
	conns    map[*link]struct{}
	accepted int
	wg       sync.WaitGroup
}

// link is one client connection and, once dialed, its upstream connection.
type link struct {
	client, server net.Conn
}

// NewProxy listens on 127.0.0.1 with a free port and forwards to target
// ("host:port"), dialed anew for every accepted connection.
func NewProxy(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault: listen: %w", err)
	}
	p := &Proxy{target: target, lis: lis, conns: map[*link]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's address, "127.0.0.1:PORT": give it to clients instead
// of the target's.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget makes new connections go to target; open ones stay where they
// are (Cut them to move everyone). With Cut and Restore it stands for a
// server restarted elsewhere, e.g. an xDS server restarted on a new port.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Cut closes every connection at once (with a TCP reset) and resets new ones
// as soon as they are accepted, until Restore. Clients see "connection reset
// by peer" or EOF, as when a server goes down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = modeCut
	for l := range p.conns {
		l.reset()
	}
	p.cond.Broadcast()
}

// Blackhole holds all traffic, like a network partition: bytes already in
// flight and new connections wait (new connections are accepted, but the
// target is not dialed) until Restore, when they go through, or Cut or Close.
// Clients see nothing but silence: only their own timeouts and keepalives
// notice.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = modeBlackhole
	p.cond.Broadcast()
}

// Restore forwards again after Cut or Blackhole.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = modePass
	p.cond.Broadcast()
}

// ActiveConns is the number of client connections open through the proxy.
func (p *Proxy) ActiveConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted is the number of client connections accepted so far, reset ones
// included.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines. Safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.lis.Close()
	for l := range p.conns {
		l.close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE; try again
			continue
		}
		l := &link{client: c}
		p.mu.Lock()
		p.accepted++
		switch {
		case p.closed:
			p.mu.Unlock()
			c.Close()
			return
		case p.mode == modeCut:
			p.mu.Unlock()
			l.reset()
			continue
		}
		p.conns[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// waitPass blocks while the proxy is blackholed; it returns false when the
// link must end (cut or closed).
func (p *Proxy) waitPass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == modeBlackhole && !p.closed {
		p.cond.Wait()
	}
	return p.mode == modePass && !p.closed
}

func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
		l.close()
	}()
	if !p.waitPass() {
		return
	}
	s, err := net.DialTimeout("tcp", p.Target(), 5*time.Second)
	if err != nil {
		l.reset() // the target is down: the client sees it as down too
		return
	}
	p.mu.Lock()
	if p.closed || p.mode == modeCut {
		p.mu.Unlock()
		s.Close()
		return
	}
	l.server = s
	p.mu.Unlock()

	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); p.pipe(l, s, l.client) }()
	go func() { defer pipes.Done(); p.pipe(l, l.client, s) }()
	pipes.Wait()
}

// pipe copies src to dst, holding each chunk while the proxy is blackholed.
// At EOF it half-closes dst and lets the other direction go on; on any other
// end it closes the whole link.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitPass() {
				l.close()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
				return
			}
			l.close()
			return
		}
	}
}

// reset closes both sides with SO_LINGER 0, so peers get a TCP RST.
func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if c != nil {
			_ = c.Close()
		}
	}
}

func (l *link) close() {
	if l.client != nil {
		_ = l.client.Close()
	}
	if l.server != nil {
		_ = l.server.Close()
	}
}
