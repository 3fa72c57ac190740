package notify

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestWaitReady(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"READY=1\n", true},
		{"STATUS=starting\nREADY=1\n", true},
		{"READY=1", true},
		{"", false},
		{"READY=0\n", false},
		{"NOT READY=1\n", false},
	} {
		if got := WaitReady(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("WaitReady(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestSendReadyChild passes a pipe to a child process as a supervisor does
// and checks that the child's SendReady reaches WaitReady.
func TestSendReadyChild(t *testing.T) {
	if os.Getenv("NOTIFY_TEST_CHILD") == "1" {
		if err := SendReady(); err != nil {
			os.Exit(1)
		}
		if _, ok := os.LookupEnv(EnvFD); ok {
			os.Exit(2) // children of the child would inherit it
		}
		os.Exit(0)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSendReadyChild$")
	cmd.Env = append(os.Environ(), "NOTIFY_TEST_CHILD=1", EnvFD+"=3")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ready := WaitReady(r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if !ready {
		t.Error("the child's SendReady did not reach WaitReady")
	}
}

func TestSendReadyWithoutSupervisor(t *testing.T) {
	t.Setenv(EnvFD, "")
	os.Unsetenv(EnvFD)
	if err := SendReady(); err != nil {
		t.Errorf("without %s: %v, want nothing done", EnvFD, err)
	}
}

func TestSendReadyBadFD(t *testing.T) {
	for _, v := range []string{"x", "1", "-4"} {
		t.Setenv(EnvFD, v)
		err := SendReady()
		if err == nil || !strings.Contains(err.Error(), EnvFD) {
			t.Errorf("%s=%q: got %v, want an error naming the variable", EnvFD, v, err)
		}
	}
}
