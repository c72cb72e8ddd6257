package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// podmanStamp is a timestamp podman logs -t prints: before each line,
// and again before each partial record it joins into a line.
var podmanStamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z `)

// podmanLogLines reads what podman logs -t printed on one stream when the
// fixture was made: time and text of each line, the stamps of the partial
// records after the first one removed.
func podmanLogLines(t *testing.T, p string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		loc := podmanStamp.FindStringIndex(l)
		if loc == nil || loc[0] != 0 {
			t.Fatalf("%s: %q has no leading timestamp", p, l)
		}
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(l[:loc[1]]))
		if err != nil {
			t.Fatal(err)
		}
		text := podmanStamp.ReplaceAllString(l[loc[1]:], "")
		out = append(out, fmt.Sprintf("%s %q", ts.UTC().Format(time.RFC3339Nano), strings.TrimSuffix(text, "\n")))
	}
	return out
}

// Every Podman container's log (k8s-file driver: conmon's ctr.log in the
// store), each stream line by line as podman logs -t printed it: long
// lines joined from conmon's partial records, a last line without its
// newline, the rootless store's too; a container never started has an
// empty log.
func TestPodmanLogs(t *testing.T) {
	n, dir := cstorageFixture(t)
	checked := 0
	for _, store := range []string{"rootful", "rootless"} {
		files, _ := filepath.Glob(filepath.Join(dir, "expected", store, "logs", "*.stdout"))
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".stdout")
			if strings.HasSuffix(name, "-infra") {
				continue // podman logs prints nothing for it; ctrlift refuses it
			}
			got := map[string][]string{}
			_, err := n.Logs(name, LogOptions{}, func(l *LogLine) error {
				if l.Malformed {
					t.Errorf("%s: malformed line %d: %q", name, l.Line, l.Text)
				}
				got[l.Stream] = append(got[l.Stream], fmt.Sprintf("%s %q", l.Time.UTC().Format(time.RFC3339Nano), l.Text))
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, stream := range []string{"stdout", "stderr"} {
				want := podmanLogLines(t, strings.TrimSuffix(f, ".stdout")+"."+stream)
				if strings.Join(got[stream], "\n") != strings.Join(want, "\n") {
					t.Errorf("%s %s:\n%s\nwant (podman logs -t)\n%s", name, stream, clipLines(got[stream]), clipLines(want))
				}
				checked += len(want)
			}
		}
	}
	t.Logf("%d lines compared", checked)
	if checked < 6 {
		t.Errorf("only %d lines compared", checked)
	}
}

func clipLines(ls []string) string {
	var out []string
	for _, l := range ls {
		if len(l) > 120 {
			l = l[:120] + fmt.Sprintf("...(%d bytes)", len(l))
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
