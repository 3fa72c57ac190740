package manifest

import (
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// after parses a daemon's after: a list of distinct daemon names of the
// same package (checked against the package's apps by checkAfter).
func (p *parser) after(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.Errorf(n, field, "want a list of daemon names of this package, like [db]")
	}
	out := []string{}
	for _, item := range n.Content {
		s, err := p.Str(item, field)
		if err != nil {
			return nil, err
		}
		if err := p.checkName(item, field, s, "daemon"); err != nil {
			return nil, err
		}
		if slices.Contains(out, s) {
			return nil, p.Errorf(item, field, "%q is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkAfter checks that every after: names another daemon of the package
// and that no daemon waits, through others, for itself.
func (p *parser) checkAfter(apps map[string]*App) error {
	for _, name := range sortedKeys(apps) {
		for _, dep := range apps[name].After {
			field := "apps." + name + ".after"
			switch d := apps[dep]; {
			case dep == name:
				return p.FieldErrorf(field, "%s cannot start after itself", name)
			case d == nil:
				return p.FieldErrorf(field, "%q is not an app of this package (want a daemon of it)", dep)
			case d.Daemon == "":
				return p.FieldErrorf(field, "%q is not a daemon (add daemon: to it, or leave it out of after)", dep)
			}
		}
	}
	if cycle := afterCycle(apps); cycle != nil {
		return p.FieldErrorf("apps."+cycle[0]+".after", "daemons wait for each other in a cycle: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

// afterCycle returns a cycle of after: (its first name repeated at its
// end), or nil.
func afterCycle(apps map[string]*App) []string {
	const (
		unseen = iota
		open
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch mark[n] {
		case open:
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		case done:
			return nil
		}
		mark[n] = open
		path = append(path, n)
		deps := slices.Clone(apps[n].After)
		sort.Strings(deps)
		for _, d := range deps {
			if apps[d] == nil {
				continue
			}
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, n := range sortedKeys(apps) {
		if c := visit(n); c != nil {
			return c
		}
	}
	return nil
}
