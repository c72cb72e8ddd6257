package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// readmeStep is one "$ command" of a console block in README.md and the
// output shown under it. In the shown output, "…" stands for any text
// within a line, and a line that is only "…" for any number of lines.
type readmeStep struct {
	line int
	cmd  string
	want []string
}

func readmeSteps(t *testing.T, readme string) []readmeStep {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []readmeStep
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```console"):
			in = true
		case strings.HasPrefix(l, "```"):
			in = false
		case in && strings.HasPrefix(l, "$ "):
			steps = append(steps, readmeStep{line: n, cmd: l[2:]})
		case in && len(steps) > 0:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
		}
	}
	return steps
}

// matchLines reports whether got starts with the lines of want.
func matchLines(want, got []string) bool {
	if len(want) == 0 {
		return true
	}
	if want[0] == "…" {
		for i := 0; i <= len(got); i++ {
			if matchLines(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		return false
	}
	parts := strings.Split(want[0], "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got[0]) {
		return false
	}
	return matchLines(want[1:], got[1:])
}

// TestREADME runs every command of README.md's walkthrough, in order, in a
// scratch directory with ctrlift on PATH, and checks the output shown.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	repo := testutil.RepoRoot(t)
	for _, tool := range []string{"bash", "tar", "jq", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "ctrlift"), "./cmd/ctrlift")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(repo, "testdata"), filepath.Join(work, "testdata")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"TZ=UTC", "LC_ALL=C",
		"XDG_CACHE_HOME="+filepath.Join(os.TempDir(), "ctrlift-test-cache", "xdg"))
	var exports []string
	steps := readmeSteps(t, filepath.Join(repo, "README.md"))
	if len(steps) < 8 {
		t.Fatalf("README has only %d console commands", len(steps))
	}
	for _, s := range steps {
		if strings.HasPrefix(s.cmd, "export ") {
			exports = append(exports, s.cmd)
			continue
		}
		script := strings.Join(append(append([]string{"set -eo pipefail"}, exports...), s.cmd), "\n")
		c := exec.Command("bash", "-c", script)
		c.Dir = work
		c.Env = env
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Errorf("README.md:%d: %s: %v\n%s", s.line, s.cmd, err, stderr.String())
			continue
		}
		got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if !matchLines(s.want, got) {
			t.Errorf("README.md:%d: %s: output differs from README\nREADME shows:\n%s\ngot:\n%s", s.line, s.cmd, strings.Join(s.want, "\n"), strings.Join(got, "\n"))
		}
	}
}
