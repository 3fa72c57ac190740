package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// WriteKeyValues writes m as KEY=VALUE lines sorted by key: text values as
// they are, others as JSON, each made Printable.
func WriteKeyValues(w io.Writer, m map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := m[k].(string)
		if !ok {
			b, _ := json.Marshal(m[k])
			v = string(b)
		}
		if _, err := fmt.Fprintf(w, "%s=%s\n", k, Printable(v)); err != nil {
			return err
		}
	}
	return nil
}
