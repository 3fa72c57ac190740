package boot

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cmdline holds the paddock.* options of the kernel command line.
type cmdline struct {
	Slot  string // paddock.slot: a forced slot, or ""
	Cmd   string // paddock.cmd, decoded: a shell command to run once the agent is ready
	Debug bool   // paddock.debug=1: a shell on the console instead of powering off on failure
	Trace bool   // paddock.trace=1: print each boot step with the time since the kernel started
	// Watchdog (paddock.watchdog=SECONDS) is the watchdog timeout of a
	// tried boot; TryWait (paddock.trywait=SECONDS) how long a tried boot
	// waits for its agent to be ready. Zero means the defaults.
	Watchdog time.Duration
	TryWait  time.Duration
}

// readCmdline reads and parses the kernel command line.
func readCmdline() (cmdline, error) {
	b, err := os.ReadFile(procCmdline)
	if err != nil {
		return cmdline{}, fmt.Errorf("cannot read kernel command line: %w", err)
	}
	return parseCmdline(string(b))
}

// parseCmdline parses the paddock.* keys of a kernel command line. Every
// valid key is set even when another is wrong, so that paddock.debug works
// on a command line with a typo; the error names each bad key.
func parseCmdline(s string) (cmdline, error) {
	var c cmdline
	var errs []error
	for _, word := range splitCmdline(s) {
		key, value, _ := strings.Cut(word, "=")
		if err := c.set(key, value); err != nil {
			errs = append(errs, fmt.Errorf("kernel command line: %s: %w", key, err))
		}
	}
	return c, errors.Join(errs...)
}

func (c *cmdline) set(key, value string) error {
	switch key {
	case "paddock.slot":
		if !validSlot(value) {
			return fmt.Errorf("%q: want a or b", value)
		}
		c.Slot = value
	case "paddock.cmd":
		cmd, err := decodeBase64(value)
		if err != nil {
			return err
		}
		c.Cmd = cmd
	case "paddock.debug":
		c.Debug = isTrue(value)
	case "paddock.trace":
		c.Trace = isTrue(value)
	case "paddock.watchdog", "paddock.trywait":
		n, err := strconv.Atoi(value)
		if err != nil || n < 5 || n > 3600 || value != strconv.Itoa(n) {
			return errors.New("want a number of seconds from 5 to 3600")
		}
		if key == "paddock.watchdog" {
			c.Watchdog = time.Duration(n) * time.Second
		} else {
			c.TryWait = time.Duration(n) * time.Second
		}
	default:
		if strings.HasPrefix(key, "paddock.") {
			return errors.New("unknown option (want paddock.slot, paddock.cmd, paddock.debug, paddock.trace, paddock.watchdog or paddock.trywait)")
		}
	}
	return nil
}

// isTrue reads a boolean option: "paddock.debug" alone means on.
func isTrue(value string) bool { return value == "1" || value == "" || value == "true" }

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) (string, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b), nil
		}
	}
	return "", errors.New("not base64")
}

// splitCmdline splits a command line into words at spaces outside double
// quotes and removes the quotes, as the kernel does (key="a b").
func splitCmdline(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
