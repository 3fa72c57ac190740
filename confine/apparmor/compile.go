package apparmor

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoParser means apparmor_parser is not installed.
var ErrNoParser = errors.New("apparmor_parser not found (install the apparmor package)")

// abi30 is the AppArmor 3.0 feature ABI (from the apparmor package's
// /etc/apparmor.d/abi/3.0). Profiles pin it with "abi <abi/3.0>,", and Check
// compiles against it, so neither needs a policy tree nor a kernel.
//
//go:embed abi/3.0
var abi30 []byte

// parserPaths are tried after $PATH, which often lacks the sbin dirs.
var parserPaths = []string{"/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"}

// compileTimeout bounds one apparmor_parser run; a profile compiles in well
// under a second, but DFA building on a slow board can take a while.
var compileTimeout = 2 * time.Minute

// Compile compiles profileText into binary policy, ready for Load, without
// touching the kernel. featuresDir is the target kernel's feature set: a copy
// of its /sys/kernel/security/apparmor/features directory, or a features file
// in the format of aa-features-abi; empty means this kernel's features, or
// the parser's built-in defaults where this kernel has no AppArmor.
// It runs "apparmor_parser -Q -K -T -S [-M featuresDir] -I DIR" with the
// text on stdin, where DIR holds the embedded abi/3.0.
func Compile(profileText string, featuresDir string) ([]byte, error) {
	args := []string{"--skip-kernel-load", "--skip-cache", "--skip-read-cache", "--stdout"}
	if featuresDir != "" {
		if _, err := os.Stat(featuresDir); err != nil {
			return nil, fmt.Errorf("cannot compile apparmor profile: features: %w", err)
		}
		args = append(args, "--features-file", featuresDir)
	}
	out, err := runParser(profileText, args)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("cannot compile apparmor profile: apparmor_parser wrote no policy")
	}
	return out, nil
}

// Check parses and compiles profileText against the embedded AppArmor 3.0
// feature set and reports the parser's complaint, if any. It works on hosts
// whose kernel has no AppArmor: "apparmor_parser -Q -K -T -M abi/3.0 -I DIR".
func Check(profileText string) error {
	dir, err := includeDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	features := filepath.Join(dir, "abi", "3.0")
	_, err = runParserIn(dir, profileText, []string{"--skip-kernel-load", "--skip-cache", "--skip-read-cache", "--features-file", features})
	return err
}

// runParser runs apparmor_parser with args on profileText and returns stdout.
func runParser(profileText string, args []string) ([]byte, error) {
	dir, err := includeDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return runParserIn(dir, profileText, args)
}

func runParserIn(dir, profileText string, args []string) ([]byte, error) {
	parser, err := findParser()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), compileTimeout)
	defer cancel()
	// -I comes before the default base dir, so the embedded ABI is the one used.
	cmd := exec.CommandContext(ctx, parser, append(args, "--Include", dir)...)
	cmd.Stdin = strings.NewReader(profileText)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := parserMessage(stderr.String()); msg != "" {
			return nil, fmt.Errorf("cannot compile apparmor profile: %s", msg)
		}
		return nil, fmt.Errorf("cannot compile apparmor profile: %s: %w", parser, err)
	}
	return stdout.Bytes(), nil
}

// parserMessage drops the parser's chatter about a missing kernel interface,
// which it prints on every run on a kernel without AppArmor.
func parserMessage(stderr string) string {
	var keep []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Cache read/write disabled") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}

func findParser() (string, error) {
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p, nil
	}
	for _, p := range parserPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", ErrNoParser
}

// includeDir writes the embedded ABI into a new temporary include dir.
func includeDir() (string, error) {
	dir, err := os.MkdirTemp("", "paddock-apparmor-")
	if err != nil {
		return "", fmt.Errorf("cannot compile apparmor profile: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "abi"), 0o755); err == nil {
		err = os.WriteFile(filepath.Join(dir, "abi", "3.0"), abi30, 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("cannot compile apparmor profile: %w", err)
	}
	return dir, nil
}
