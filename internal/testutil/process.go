package testutil

import (
	"os"
	"syscall"
	"time"
)

// Terminate stops p, a process the test started: SIGTERM, so that it can
// save its state, then after grace SIGKILL. It returns once exited (a
// channel that receives or closes when p's Wait returns) says p has ended.
func Terminate[T any](p *os.Process, exited <-chan T, grace time.Duration) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		p.Kill()
		<-exited
	}
}
