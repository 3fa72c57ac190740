package interfaces_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"paddock.dev/paddock/gadget/interfaces"
)

// autoConnect is the decision of which interfaces connect by themselves
// (see each one's notes): network and the observe interfaces judged safe.
// Hardware, control and custom-device never do.
var autoConnect = []string{"hardware-observe", "network", "network-bind", "network-observe"}

// TestCatalogComplete checks what each interface must say for 'paddock
// interfaces' and the connection manager, and the auto-connect decision.
func TestCatalogComplete(t *testing.T) {
	var auto []string
	for _, i := range interfaces.All() {
		if i.Notes == "" {
			t.Errorf("%s: no notes", i.Name)
		}
		if i.OnDisconnect != "" && i.OnDisconnect != interfaces.Stop {
			t.Errorf("%s: unknown disconnect action %q", i.Name, i.OnDisconnect)
		}
		if i.Slot != nil && i.Share != nil {
			t.Errorf("%s: both gadget and app slots", i.Name)
		}
		if i.Slot != nil {
			if i.Slot.Grant == nil || len(i.Slot.Attrs)+len(i.Slot.OneOf) == 0 {
				t.Errorf("%s: a hardware slot kind without a grant or attributes", i.Name)
			}
			if i.OnDisconnect != interfaces.Stop {
				t.Errorf("%s: a hardware interface must stop the plug's processes at disconnect", i.Name)
			}
			if (i.Slot.Nodes == nil) != (i.Slot.Example == "") || i.Slot.Nodes != nil && !i.Slot.Nodes.MatchString(i.Slot.Example) {
				t.Errorf("%s: node pattern and example disagree", i.Name)
			}
		}
		if i.AutoConnect {
			auto = append(auto, i.Name)
			if i.Slot != nil || i.Share != nil || strings.HasSuffix(i.Name, "-control") || i.Name == "custom-device" {
				t.Errorf("%s auto-connects", i.Name)
			}
		}
	}
	if !slices.Equal(auto, autoConnect) {
		t.Errorf("got auto-connected %q, want %q", auto, autoConnect)
	}
}

// TestCatalogIsOneFilePerInterface checks that adding an interface touches
// no other file: each file of the catalog registers one interface, and no
// code outside the catalog compares a string with an interface's name (a
// switch on names). Test files and the lines listed in notName (the same
// word meaning something else) are left out.
func TestCatalogIsOneFilePerInterface(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	registered := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "catalog.go" {
			continue
		}
		n := registrations(t, f)
		if n != 1 {
			t.Errorf("%s registers %d interfaces, want 1", f, n)
		}
		registered += n
	}
	if registered != len(interfaces.All()) {
		t.Errorf("the files register %d interfaces, the catalog holds %d", registered, len(interfaces.All()))
	}

	notName := map[string]bool{
		// A structure's content field of gadget.yaml, not the interface.
		`gadget/volumes.go:		case "content":`: true,
	}
	var names []string
	for _, i := range interfaces.All() {
		names = append(names, regexp.QuoteMeta(strconv.Quote(i.Name)))
	}
	alt := strings.Join(names, "|")
	cmp := regexp.MustCompile(`(case\s+|[=!]=\s*)(` + alt + `)|(` + alt + `)\s*[=!]=|Lookup\((` + alt + `)\)`)
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || rel == "gadget/interfaces") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if cmp.MatchString(line) && !notName[rel+":"+line] {
				t.Errorf("%s: %q compares with an interface's name: put what it decides in the interface's file", rel, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// registrations counts the calls of register in the Go file name.
func registrations(t *testing.T, name string) int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		if c, ok := node.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "register" {
				n++
			}
		}
		return true
	})
	return n
}
