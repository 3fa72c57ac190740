package partition

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	if got, want := Required(), []string{"boot", "bootenv", "base-a", "base-b", "data"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for slot, want := range map[string]string{"a": BaseA, "b": BaseB} {
		if got := Base(slot); got != want {
			t.Errorf("got Base(%q) = %q, want %q", slot, got, want)
		}
	}
}
