package ha

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gitxds.dev/gitxds/reconciler/admin"
)

// Pid is the process id of the replica's running process, 0 when none runs.
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	select {
	case <-r.exited:
		return 0
	default:
		return r.cmd.Process.Pid
	}
}

// Starts is how many times the replica's process was started.
func (r *Replica) Starts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts
}

// RSS is the resident set size of the replica's process in bytes (VmRSS
// of /proc/<pid>/status); 0 when it does not run.
func (r *Replica) RSS() int64 {
	pid := r.Pid()
	if pid == 0 {
		return 0
	}
	kb, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		return 0
	}
	return kb << 10
}

// procStatusKB reads one "Name: N kB" field of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("ha: no %s in /proc/%d/status", field, pid)
}

// Nodes is the replica's GET /nodes: the nodes connected to it and what
// each is served.
func (r *Replica) Nodes(ctx context.Context) ([]admin.NodeView, error) {
	var out []admin.NodeView
	err := r.getJSON(ctx, "/nodes", &out)
	return out, err
}

// ServedHash is the content hash of a NodeView's Served ("revision@hash").
func ServedHash(served string) string {
	if i := strings.LastIndex(served, "@"); i >= 0 {
		return served[i+1:]
	}
	return served
}
