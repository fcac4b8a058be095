package daemon_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing/object"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/credentials"
	"gitxds.dev/gitxds/reconciler/credentials/testcerts"
	"gitxds.dev/gitxds/reconciler/daemon"
)

// refuseAll is the real PGP verifier with a keyring the test repository's
// (unsigned) commits do not match.
var refuseAll = func(c *object.Commit) error {
	e, err := openpgp.NewEntity("release", "", "release@example.com", nil)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	_ = e.Serialize(w)
	w.Close()
	dir, err := os.MkdirTemp("", "keyring-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "keyring.asc")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		return err
	}
	v, err := credentials.PGPVerifier(p)
	if err != nil {
		return err
	}
	return v(c)
}

// mTLS: a proxy without a client certificate, or with one of another CA,
// is refused; one with a valid certificate is served.
func TestXDSMutualTLS(t *testing.T) {
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := credentials.ServerTLS(credentials.TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := e.start(daemon.Config{XDSTLS: cfg})
	first, _ := e.Repo.Head()
	if _, err := e.WaitApplied(20*time.Second, "main@sha1:"+first); err != nil {
		t.Fatal(err)
	}
	try := func(creds grpccreds.TransportCredentials) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := ads(ctx, d.XDSAddr, creds)
		if err == nil && len(resp.Resources) == 0 {
			t.Fatal("empty CDS response")
		}
		return err
	}
	for name, creds := range map[string]grpccreds.TransportCredentials{
		"no client certificate":       grpccreds.NewTLS(pki.ClientTLS(false, false)),
		"certificate of another CA":   grpccreds.NewTLS(pki.ClientTLS(false, true)),
		"plaintext to a TLS endpoint": insecure.NewCredentials(),
	} {
		err := try(creds)
		if err == nil {
			t.Errorf("%s: served", name)
			continue
		}
		if c := grpcstatus.Code(err); c != codes.Unavailable {
			t.Errorf("%s: %v (code %v)", name, err, c)
		}
	}
	if err := try(grpccreds.NewTLS(pki.ClientTLS(true, false))); err != nil {
		t.Fatalf("valid client certificate refused: %v", err)
	}
}

// Close (what SIGTERM leads to) ends the xDS streams, stops the xDS
// listener before it returns, and leaves the last good state on disk: a
// restart with Git unreachable serves it.
func TestCloseDrainsAndKeepsState(t *testing.T) {
	e := newEnv(t)
	d := e.start(daemon.Config{})
	first, _ := e.Repo.Head()
	if _, err := e.WaitApplied(20*time.Second, "main@sha1:"+first); err != nil {
		t.Fatal(err)
	}
	conn := dialADS(t, d.XDSAddr)
	if _, err := conn.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := conn.Recv(); err == nil {
		t.Fatal("the stream is still open after Close")
	}
	if c, err := net.DialTimeout("tcp", d.XDSAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the xDS listener still accepts after Close")
	}
	store, err := reconciler.OpenStore(e.Opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.Load()
	if err != nil || p.LastGood == nil || p.LastGoodRevision != "main@sha1:"+first {
		t.Fatalf("persisted state after Close: %v, %+v", err, p)
	}
}
