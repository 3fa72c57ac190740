package fleet

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkRollout rolls a ping out to 10,000 simulated devices in waves
// (go test -run x -bench Rollout ./mqtt/fleet).
func BenchmarkRollout(b *testing.B) {
	e := newTestEnv(b)
	const n = 10000
	for i := range n {
		e.fleet.add(fmt.Sprintf("dev%05d", i), fakeDone, "lab")
	}
	b.ResetTimer()
	for range b.N {
		args := append(e.opArgs(), "--group", "lab", "--waves", "1%,10%,50%,100%", "--timeout", "2m", "ping")
		if err := rollout(context.Background(), args, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
