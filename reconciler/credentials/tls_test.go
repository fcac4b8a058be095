package credentials

import (
	"crypto/tls"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/credentials/testcerts"
)

// handshake dials a TLS listener served with cfg and returns the server
// certificate's serial, or the error of the handshake as the client sees it
// after one read (TLS 1.3 reports a refused client certificate then).
func handshake(t *testing.T, cfg, client *tls.Config) (*big.Int, error) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.(*tls.Conn).Handshake(); err != nil {
			return
		}
		_, _ = c.Write([]byte("x"))
	}()
	c, err := tls.Dial("tcp", lis.Addr().String(), client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestServerMutualTLS(t *testing.T) {
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, cfg, pki.ClientTLS(false, false)); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	if _, err := handshake(t, cfg, pki.ClientTLS(false, true)); err == nil {
		t.Fatal("a client with a certificate of another CA was accepted")
	}
	if _, err := handshake(t, cfg, pki.ClientTLS(true, false)); err != nil {
		t.Fatalf("a client with a valid certificate was refused: %v", err)
	}
}

func TestServerTLSWithoutClientCA(t *testing.T) {
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, cfg, pki.ClientTLS(false, false)); err != nil {
		t.Fatalf("server-only TLS refused a client without a certificate: %v", err)
	}
}

func TestServerTLSReloadsRotatedCertificate(t *testing.T) {
	old := keyPairCheckEvery
	keyPairCheckEvery = 0
	t.Cleanup(func() { keyPairCheckEvery = old })
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := handshake(t, cfg, pki.ClientTLS(false, false))
	if err != nil {
		t.Fatal(err)
	}
	serial, err := pki.Reissue()
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the modification time moves even on a coarse clock.
	future := time.Now().Add(time.Minute)
	_ = os.Chtimes(pki.ServerCert, future, future)
	got, err := handshake(t, cfg, pki.ClientTLS(false, false))
	if err != nil {
		t.Fatal(err)
	}
	if got.Cmp(serial) != 0 || got.Cmp(first) == 0 {
		t.Fatalf("served serial %v after rotation, want %v (was %v)", got, serial, first)
	}
}

func TestServerTLSErrors(t *testing.T) {
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		f    TLSFiles
		want string
	}{
		"cert without key": {TLSFiles{CertFile: pki.ServerCert}, "both"},
		"ca only":          {TLSFiles{ClientCAFile: pki.CA}, "both"},
		"key mismatch":     {TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ClientKey}, "key pair"},
		"ca not pem":       {TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.ServerKey}, "no PEM certificate"},
	} {
		if _, err := ServerTLS(c.f, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if cfg, err := ServerTLS(TLSFiles{}, nil); cfg != nil || err != nil {
		t.Errorf("no flags: %v %v", cfg, err)
	}
}
