package manifest

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// TestRedacted pins the bug where the agent's error for a package whose
// meta/app.yaml was a link to /etc/shadow quoted the file's first line, and
// every local user read it in 'GET /v1/changes': a redacted error keeps the
// line and the kind of problem, and nothing of the file's content.
func TestRedacted(t *testing.T) {
	const secret = "Zq9SECRETx"
	tests := []struct{ name, yaml, want string }{
		{"shadow line", secret + ":$y$j9T$hash:19000:0:99999:7:::\n", "unknown field"},
		{"unknown key", "name: hello\nversion: \"1\"\n" + secret + ": x\n", "unknown field"},
		{"bad name", "name: " + secret + "\n", "invalid … name …"},
		{"bad app name", "name: hello\nversion: \"1\"\napps:\n  " + secret + ":\n    command: bin/x\n", "invalid … name …"},
		{"bad command", "name: hello\nversion: \"1\"\napps:\n  hello:\n    command: /" + secret + "\n", "invalid value"},
		{"bad plug", "name: hello\nversion: \"1\"\napps:\n  hello:\n    command: bin/x\n    plugs: [" + secret + "]\n", "invalid plug name"},
		{"bad size", "name: hello\nversion: \"1\"\napps:\n  hello:\n    command: bin/x\n    limits: {memory: " + secret + "}\n", "invalid value"},
		{"anchor", "name: *" + secret + "\n", "invalid YAML"},
		{"scalar", secret + "\n", "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), Path)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			red := e.Redacted().Error()
			if strings.Contains(red, "SECRET") || strings.Contains(red, "hash") {
				t.Errorf("redacted error %q holds the file's content", red)
			}
			if !strings.Contains(red, tt.want) || !strings.HasPrefix(red, Path) {
				t.Errorf("redacted error %q: want it to start with %s and say %q", red, Path, tt.want)
			}
			if e.Redacted().Line != e.Line {
				t.Errorf("redacted line: got %d, want %d", e.Redacted().Line, e.Line)
			}
		})
	}
	// The errors of CheckFiles quote command paths: they redact too.
	m, err := Parse([]byte("name: hello\nversion: \"1\"\napps:\n  hello:\n    command: bin/"+strings.ToLower(secret)+"\n"), Path)
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := m.CheckFiles(fstest.MapFS{}); !errors.As(err, &e) || strings.Contains(strings.ToLower(e.Redacted().Error()), "secret") {
		t.Errorf("CheckFiles: got %v, redacted %v, want an *Error without the path", err, e)
	}
}
