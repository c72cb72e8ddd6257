package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The Docker node fixture: dockerd 20.10 wrote it
// (testdata/images/docker/make-docker-node.sh); the docker client's own
// output, saved beside it, is the expectation.
func dockerNodeDir(t *testing.T) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "docker")
}

func openDockerNode(t *testing.T) *Node {
	t.Helper()
	n, err := Open([]string{filepath.Join(dockerNodeDir(t), "docker-node.raw.zst")}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// inspected is the part of `docker inspect` compared.
type inspected struct {
	ID      string `json:"Id"`
	Name    string
	Created time.Time
	Image   string
	State   struct {
		Status     string
		Running    bool
		Pid        int
		ExitCode   int
		StartedAt  time.Time
		FinishedAt time.Time
	}
	Config struct {
		Image  string
		Labels map[string]string
	}
	HostConfig struct {
		LogConfig struct{ Type string }
	}
	LogPath string
}

func readInspect(t *testing.T) map[string]inspected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dockerNodeDir(t), "expected", "inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l []inspected
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]inspected{}
	for _, c := range l {
		out[strings.TrimPrefix(c.Name, "/")] = c
	}
	if len(out) != 4 {
		t.Fatalf("inspect.json: %d containers", len(out))
	}
	return out
}

// Every container listed with docker inspect's name, image, state, exit
// code, PID and times; the one running when the daemon was killed is
// running.
func TestDockerNodeList(t *testing.T) {
	want := readInspect(t)
	n := openDockerNode(t)
	l, err := n.Containers(ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Shown) != len(want) {
		t.Fatalf("%d containers listed, docker inspect has %d", len(l.Shown), len(want))
	}
	states := map[string]string{}
	for _, c := range l.Shown {
		w, ok := want[c.DockerName]
		if !ok || w.ID != c.ID {
			t.Errorf("%s %q: not in docker inspect", c.ID, c.DockerName)
			continue
		}
		states[c.DockerName] = string(c.Status)
		if c.Engine != EngineDocker || c.Image != w.Config.Image || c.ImageRef != w.Image || c.Snapshotter != "overlay2" {
			t.Errorf("%s: engine %q image %q (%s) driver %q; docker: %q (%s)", c.DockerName, c.Engine, c.Image, c.ImageRef, c.Snapshotter, w.Config.Image, w.Image)
		}
		if string(c.Status) != w.State.Status {
			t.Errorf("%s: status %q, docker %q", c.DockerName, c.Status, w.State.Status)
		}
		switch w.State.Status {
		case "exited":
			if c.ExitCode == nil || int(*c.ExitCode) != w.State.ExitCode {
				t.Errorf("%s: exit code %v, docker %d", c.DockerName, c.ExitCode, w.State.ExitCode)
			}
		default:
			if c.ExitCode != nil {
				t.Errorf("%s (%s): exit code %d", c.DockerName, w.State.Status, *c.ExitCode)
			}
		}
		if w.State.Running && c.PID != w.State.Pid {
			t.Errorf("%s: pid %d, docker %d", c.DockerName, c.PID, w.State.Pid)
		}
		if !c.CreatedAt.Equal(w.Created) || !c.StartedAt.Equal(zeroIfUnset(w.State.StartedAt)) || !c.FinishedAt.Equal(zeroIfUnset(w.State.FinishedAt)) {
			t.Errorf("%s: created %v started %v finished %v; docker %v %v %v", c.DockerName, c.CreatedAt, c.StartedAt, c.FinishedAt,
				w.Created, w.State.StartedAt, w.State.FinishedAt)
		}
		for k, v := range w.Config.Labels {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s=%q, docker %q", c.DockerName, k, c.Labels[k], v)
			}
		}
	}
	if got := states["web"] + " " + states["worker"] + " " + states["done"] + " " + states["created"]; got != "running exited exited created" {
		t.Errorf("states: %s", got)
	}
}

// zeroIfUnset: docker prints a time never set as year 1.
func zeroIfUnset(t time.Time) time.Time {
	if t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// diff shows what `docker diff` showed: the same added and deleted paths,
// the same modified files; a directory docker marks changed (C) is one
// with a change below it.
func TestDockerNodeDiff(t *testing.T) {
	n := openDockerNode(t)
	for name := range readInspect(t) {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dockerNodeDir(t), "expected", "diff", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l == "" {
					continue
				}
				kind, p, _ := strings.Cut(l, " ")
				want[p] = kind
			}
			got := map[string]string{}
			isDir := map[string]bool{}
			err = n.Diff(name, DiffOptions{Volumes: VolumesNone}, func(r export.Record) error {
				got[r.Path] = map[string]string{"added": "A", "modified": "C", "deleted": "D"}[r.Change]
				isDir[r.Path] = r.Type == "dir"
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var diffs []string
			for p, k := range want {
				g := got[p]
				if k == "C" && g == "" {
					// docker marks a directory changed when anything
					// below it changed; ctrlift lists what changed.
					below := false
					for q := range got {
						below = below || strings.HasPrefix(q, p+"/")
					}
					if below {
						continue
					}
				}
				if g != k {
					diffs = append(diffs, p+": docker "+k+", ctrlift "+g)
				}
			}
			for p, g := range got {
				if want[p] == "" {
					diffs = append(diffs, p+": ctrlift "+g+", not in docker diff")
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Errorf("%d differences from docker diff:\n%s", len(diffs), strings.Join(diffs, "\n"))
			}
			if name == "web" && (want["/var/www/index.html"] != "D" || want["/var/www/shell.php"] != "A" || want["/etc/motd"] != "C") {
				t.Errorf("the fixture's docker diff lacks the generator's changes: %v", want)
			}
		})
	}
}

// logs gives what `docker logs -t` gave, stream by stream, for json-file
// (rotated, gzipped rotations) and local (protobuf frames, rotated,
// gzipped) logs alike; the line that never ended is partial.
func TestDockerNodeLogs(t *testing.T) {
	n := openDockerNode(t)
	want := readInspect(t)
	for _, tt := range []struct {
		name, driver string
		files        int
	}{{"web", "json-file", 3}, {"worker", "local", 3}, {"done", "json-file", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			if d := want[tt.name].HostConfig.LogConfig.Type; d != tt.driver {
				t.Fatalf("the fixture's %s logs with %s", tt.name, d)
			}
			for _, stream := range []string{"stdout", "stderr"} {
				b, err := os.ReadFile(filepath.Join(dockerNodeDir(t), "expected", "logs", tt.name+"."+stream))
				if err != nil {
					t.Fatal(err)
				}
				var got strings.Builder
				set, err := n.Logs(tt.name, LogOptions{Stream: stream}, func(l *LogLine) error {
					if l.Malformed || l.ContainerID != want[tt.name].ID {
						t.Errorf("line %+v", l)
					}
					got.WriteString(l.Time.Format("2006-01-02T15:04:05.000000000Z07:00") + " " + l.Text)
					if !l.Partial {
						got.WriteString("\n")
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(set.Files) != tt.files || set.Files[0].Format != tt.driver || (tt.files > 1 && !set.Files[0].Gzip) {
					t.Errorf("files %+v", set.Files)
				}
				if got.String() != string(b) {
					t.Errorf("%s:\n got %q\nwant %q", stream, got.String(), b)
				}
			}
		})
	}
	// Never started: no log file, an empty log (docker logs prints nothing).
	lines := 0
	if set, err := n.Logs("created", LogOptions{}, func(*LogLine) error { lines++; return nil }); err != nil || len(set.Files) != 0 || lines != 0 {
		t.Errorf("created, never started: %d lines, %v", lines, err)
	}
}

// list images shows docker image ls's images: tags, ids, creation times,
// sizes, layers and labels as docker image inspect gave them.
func TestDockerNodeImages(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(dockerNodeDir(t), "expected", "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Created  time.Time
		Size     int64
		RootFS   struct{ Layers []string }
		Config   struct{ Labels map[string]string }
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	n := openDockerNode(t)
	imgs, err := n.Images()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, im := range imgs {
		if im.Engine == EngineDocker {
			got[im.Name] = i
		}
	}
	rows := 0
	for _, w := range want {
		for _, tag := range w.RepoTags {
			rows++
			i, ok := got[tag]
			if !ok {
				t.Errorf("%s (%s) not listed", tag, w.ID)
				continue
			}
			im := imgs[i]
			if im.Namespace != DockerNamespace || im.Config != w.ID || im.Target.Digest != w.ID || !im.CreatedAt.Equal(w.Created) || im.Size != w.Size ||
				strings.Join(im.DiffIDs, " ") != strings.Join(w.RootFS.Layers, " ") || len(im.Labels) != len(w.Config.Labels) {
				t.Errorf("%s: %+v\nwant %+v", tag, im, w)
			}
			for k, v := range w.Config.Labels {
				if im.Labels[k] != v {
					t.Errorf("%s: label %s=%q, docker %q", tag, k, im.Labels[k], v)
				}
			}
		}
	}
	if rows != 2 || len(got) != rows {
		t.Errorf("%d Docker images listed, docker image ls has %d", len(got), rows)
	}
}
