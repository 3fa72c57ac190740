package boot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
)

// problemsFile is where init records what went wrong at boot and what it
// did about it (a damaged boot environment, repaired or reset), relative to
// the base's root: on the data partition, so that the agent can report it
// (Problems) and it survives the next boots.
const problemsFile = dirs.LibRel + "/" + ProblemsName

// ProblemsName is the name of the record of boot problems in the agent's
// state directory (dirs.LibDir).
const ProblemsName = "boot-problems"

// maxProblems bounds the record: the oldest lines go first.
const (
	maxProblems      = 32
	maxProblemsBytes = 64 << 10
)

// recordProblems appends problems, one line each stamped with now, to the
// record at path, keeping the last maxProblems lines. Nothing to record
// writes nothing.
func recordProblems(path string, problems []string, now time.Time) error {
	if len(problems) == 0 {
		return nil
	}
	lines, err := readProblems(path)
	if err != nil {
		lines = nil // a damaged record must not keep the new lines out
	}
	for _, p := range problems {
		lines = append(lines, now.UTC().Format(time.RFC3339)+" "+oneLine(p))
	}
	if len(lines) > maxProblems {
		lines = lines[len(lines)-maxProblems:]
	}
	if err := atomicfile.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("cannot record the boot's problems: %w", err)
	}
	return nil
}

// Problems returns what init recorded going wrong at the device's boots,
// oldest first, from the record in libDir (dirs.LibDir), one line each:
// "2026-12-01T22:50:00Z bootenv: copy 2 damaged (bad checksum ...):
// repaired from copy 1". No record is no problem.
func Problems(libDir string) ([]string, error) {
	lines, err := readProblems(filepath.Join(libDir, ProblemsName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return lines, err
}

func readProblems(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProblemsBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read the boot's problems: %w", err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			lines = append(lines, line)
		}
	}
	return lines, nil
}
