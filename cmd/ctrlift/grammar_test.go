package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestGrammar holds every command to README's "Command grammar": -o names
// a format, each flag name (and shorthand) means one thing in every
// command, and the shared flags are registered once, on the root.
func TestGrammar(t *testing.T) {
	root := newRootCmd()
	type use struct{ cmd, usage, short string }
	seen := map[string]use{}
	shorts := map[string]string{} // shorthand → flag name
	shared := map[string]bool{}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { shared[f.Name] = true })
	for _, name := range []string{"input", "partition", "namespace", "runtime-root", "no-cache", "quiet"} {
		if !shared[name] {
			t.Errorf("--%s is not a root flag", name)
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if shared[f.Name] {
				t.Errorf("%s registers the shared flag --%s again", c.CommandPath(), f.Name)
			}
			if f.Name == "output" && (f.Shorthand != "o" || !strings.HasPrefix(f.Usage, "output format: ")) {
				t.Errorf("%s: -o is not a format: %q", c.CommandPath(), f.Usage)
			}
			if f.Shorthand == "o" && f.Name != "output" {
				t.Errorf("%s: -o is --%s", c.CommandPath(), f.Name)
			}
			u := use{c.CommandPath(), f.Usage, f.Shorthand}
			if f.Name == "output" {
				u.usage = "" // the formats differ by command
			}
			if prev, ok := seen[f.Name]; ok && (prev.usage != u.usage || prev.short != u.short) {
				t.Errorf("--%s means two things: %q (-%s) in %s, %q (-%s) in %s", f.Name, prev.usage, prev.short, prev.cmd, u.usage, u.short, u.cmd)
			}
			seen[f.Name] = u
			if f.Shorthand != "" {
				if prev, ok := shorts[f.Shorthand]; ok && prev != f.Name {
					t.Errorf("-%s is --%s and --%s", f.Shorthand, prev, f.Name)
				}
				shorts[f.Shorthand] = f.Name
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(seen) < 10 {
		t.Errorf("only %d command flags seen", len(seen))
	}
}
