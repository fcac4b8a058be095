package daemon

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
)

// serve warns at start about xDS without mutual TLS, and about mutating
// admin endpoints reachable without a token beyond loopback.
func TestStartWarnings(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9400}
	any := &net.TCPAddr{IP: net.IPv4zero, Port: 9400}
	mtls := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	cases := []struct {
		name string
		cfg  Config
		addr net.Addr
		want []string
	}{
		{"plaintext xDS, loopback admin", Config{}, loop, []string{"without mutual TLS"}},
		{"server-only TLS", Config{XDSTLS: &tls.Config{}}, loop, []string{"without mutual TLS"}},
		{"mTLS, loopback admin", Config{XDSTLS: mtls}, loop, nil},
		{"mTLS, admin on every address without a token", Config{XDSTLS: mtls}, any, []string{"without --admin-token-file"}},
		{"mTLS, admin on every address with a token", Config{XDSTLS: mtls, AdminToken: "t"}, any, nil},
	}
	for _, c := range cases {
		got := startWarnings(c.cfg, c.addr)
		if len(got) != len(c.want) {
			t.Errorf("%s: warnings %q, want %d", c.name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q does not say %q", c.name, got[i], w)
			}
		}
	}
}
