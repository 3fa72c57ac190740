package cli

import (
	"strings"
	"testing"
)

func TestWriteKeyValues(t *testing.T) {
	var b strings.Builder
	m := map[string]any{"port": 8080.0, "name": "web\x1b[2J", "on": true, "list": []any{1.0, "a"}, "none": nil}
	if err := WriteKeyValues(&b, m); err != nil {
		t.Fatal(err)
	}
	want := "list=[1,\"a\"]\nname=web\\x1b[2J\nnone=null\non=true\nport=8080\n"
	if got := b.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
