package yamlstrict

import (
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Size returns a size in bytes: an integer, or a string that ParseSize
// reads, such as "64M".
func (p *Parser) Size(n *yaml.Node, field string) (int64, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		return p.Int(n, field, math.MaxInt64)
	}
	s, err := p.Str(n, field)
	if err != nil {
		return 0, err
	}
	v, err := parseSize(s, p.NegativeSizes)
	if err != nil {
		return 0, p.Errorf(n, field, "%v", err)
	}
	return v, nil
}

// ParseSize parses a number of bytes with an optional K, M, G or T suffix
// (powers of 1024), like 64M. A sign makes the size invalid.
func ParseSize(s string) (int64, error) {
	return parseSize(s, false)
}

// parseSize is ParseSize; with negative, a leading minus is read, and the
// size refused as negative rather than invalid.
func parseSize(s string, negative bool) (int64, error) {
	num, mult := s, int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			num = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' && (!negative || v == 0) {
		return 0, fmt.Errorf("invalid size %q (want a number of bytes with an optional K, M, G or T suffix, like 64M)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("must not be negative, got %q", s)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}
