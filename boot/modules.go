package boot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// moduleList reads the modules to load, in order, from
// /lib/modules/KVER/paddock.modules: one name a line, written by the image
// builder; blank lines and #-comments are skipped. A missing list means a
// kernel with the drivers built in: nothing to load.
func moduleList(kver string) ([]string, error) {
	path := filepath.Join(modulesDir, kver, "paddock.modules")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("cannot read module list: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if name := strings.TrimSpace(line); name != "" {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read module list %s: %w", path, err)
	}
	return names, nil
}
