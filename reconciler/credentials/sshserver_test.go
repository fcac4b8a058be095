package credentials

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sshGitServer is a minimal Git-over-SSH server for tests: it accepts one
// client public key and runs the real `git upload-pack` on one bare
// repository for every exec request.
type sshGitServer struct {
	addr     string
	hostKey  ssh.PublicKey
	bare     string
	authSeen atomic.Int64 // public-key auth attempts
	execs    atomic.Int64
	lis      net.Listener
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startSSHGitServer(t *testing.T, bare string, client ssh.PublicKey) *sshGitServer {
	t.Helper()
	host, _ := newKey(t)
	s := &sshGitServer{hostKey: host.PublicKey(), bare: bare}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			s.authSeen.Add(1)
			if string(k.Marshal()) == string(client.Marshal()) {
				return nil, nil
			}
			return nil, io.EOF
		},
	}
	cfg.AddHostKey(host)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.lis, s.addr = lis, lis.Addr().String()
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s
}

func (s *sshGitServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, creqs)
	}
}

func (s *sshGitServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		n := binary.BigEndian.Uint32(req.Payload)
		cmd := string(req.Payload[4 : 4+n])
		if !strings.HasPrefix(cmd, "git-upload-pack ") {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		s.execs.Add(1)
		git := exec.Command("git", "upload-pack", s.bare)
		git.Stdin, git.Stdout, git.Stderr = ch, ch, ch.Stderr()
		code := uint32(0)
		if err := git.Run(); err != nil {
			code = 1
		}
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
		return
	}
}
