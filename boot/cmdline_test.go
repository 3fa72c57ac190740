package boot

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

func TestParseCmdline(t *testing.T) {
	cmd := "echo 'hi there' && paddock list"
	std := base64.StdEncoding.EncodeToString([]byte(cmd))
	url := base64.RawURLEncoding.EncodeToString([]byte(cmd))
	tests := []struct {
		name    string
		line    string
		want    cmdline
		wantErr string
	}{
		{"none", "console=ttyS0 quiet\n", cmdline{}, ""},
		{"slot", "console=ttyS0 paddock.slot=b", cmdline{Slot: "b"}, ""},
		{"cmd std base64", "paddock.cmd=" + std + " quiet", cmdline{Cmd: cmd}, ""},
		{"cmd url base64", "paddock.cmd=" + url, cmdline{Cmd: cmd}, ""},
		{"debug", "paddock.debug=1", cmdline{Debug: true}, ""},
		{"debug off", "paddock.debug=0", cmdline{}, ""},
		{"trace", "quiet paddock.trace=1", cmdline{Trace: true}, ""},
		{"trace alone", "paddock.trace", cmdline{Trace: true}, ""},
		{"quoted", `foo="a b" paddock.slot="a"`, cmdline{Slot: "a"}, ""},
		{"bad slot keeps debug", "paddock.debug=1 paddock.slot=c", cmdline{Debug: true}, "paddock.slot"},
		{"bad base64", "paddock.cmd=!!!", cmdline{}, "not base64"},
		{"unknown key", "paddock.solt=a", cmdline{}, "unknown option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCmdline(tt.line)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadCmdline(t *testing.T) {
	root := dirstest.SetRoot(t)
	testutil.WriteFile(t, filepath.Join(root, "proc/cmdline"), "console=ttyS0 paddock.slot=b\n")
	if c, err := readCmdline(); err != nil || c.Slot != "b" {
		t.Errorf("got %+v, %v, want slot b", c, err)
	}
}

func TestSplitCmdline(t *testing.T) {
	got := strings.Join(splitCmdline(`  a  b="c d"  "e f"g `+"\n"), "|")
	if want := `a|b=c d|e fg`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
