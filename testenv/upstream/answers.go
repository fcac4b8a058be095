package upstream

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/status"
)

// Caller calls target once with the metadata md and says which upstream
// answered (its ServerId): the proxyless clients of testenv/xdsclient and
// testenv/grpcjs both are.
type Caller interface {
	Call(ctx context.Context, target string, md map[string]string) (serverID string, err error)
}

// PollInterval is how often WaitAnsweredBy calls again.
const PollInterval = 25 * time.Millisecond

// WaitAnsweredBy calls target through c every PollInterval until a call is
// answered by serverID, and returns nil then; or the context's error with
// the last answer or error seen. It returns at the first such answer: with
// a weighted split, use Distribution after it. who names the client in
// the error.
func WaitAnsweredBy(ctx context.Context, c Caller, who, target, serverID string, md map[string]string) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	var last string
	for {
		id, err := c.Call(ctx, target, md)
		switch {
		case err == nil && id == serverID:
			return nil
		case err == nil:
			last = "answered by " + id
		default:
			last = "error: " + status.Convert(err).String()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not answered by %q (last: %s): %w", who, target, serverID, last, ctx.Err())
		case <-t.C:
		}
	}
}

// Distribution sends n calls to target through c, one after the other,
// and counts who answered. It stops at the first failed call and returns
// the counts so far with the error. who names the client in the error.
func Distribution(ctx context.Context, c Caller, who, target string, n int, md map[string]string) (map[string]int, error) {
	counts := map[string]int{}
	for i := range n {
		id, err := c.Call(ctx, target, md)
		if err != nil {
			return counts, fmt.Errorf("%s: call %d of %d to %s: %w", who, i+1, n, target, err)
		}
		counts[id]++
	}
	return counts, nil
}
