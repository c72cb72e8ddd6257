package node

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func diskFixture(t *testing.T, name string) string {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir()) // NoCache's temporary copies
	return filepath.Join("..", "testdata", "images", "disk", name+".raw.zst")
}

// Open: the selected partition's filesystem, and clear errors otherwise.
func TestOpenPartitions(t *testing.T) {
	gpt := diskFixture(t, "gpt512")
	n, err := Open([]string{gpt}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if n.Partition().Number != 1 || !strings.HasPrefix(n.Describe(), `partition 1 "STATE" (ext4, label "state-fs", 16.0 MiB at byte 1048576)`) {
		t.Errorf("default partition: %s", n.Describe())
	}
	files, err := n.Files()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(files, "lost+found"); err != nil {
		t.Errorf("ext4 of STATE: %v", err)
	}
	// No runtime on it: the error names what was searched and what is there.
	_, err = n.State()
	var nr *RuntimeNotFoundError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), `partitions searched: partition 1 "STATE"`) ||
		!strings.Contains(err.Error(), `partition 3 "DATA" (ext3, label "datavol"`) {
		t.Errorf("state: %v", err)
	}
	n.Close()

	for _, tt := range []struct{ partition, err string }{
		{"datavol", ""},
		{"3", ""},
		{"EFI-SYSTEM", `partition 2 "EFI-SYSTEM" (vfat, label "EFI", 8.0 MiB at byte 17825792) is not an ext2/3/4 or XFS filesystem`},
		{"nope", `no partition with number, name or label "nope"`},
	} {
		n, err := Open([]string{gpt}, Options{NoCache: true, Partition: tt.partition})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("-p %s: %v", tt.partition, err)
		case tt.err == "" && n.Partition().Number != 3:
			t.Errorf("-p %s: partition %d", tt.partition, n.Partition().Number)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("-p %s: %v, want %q", tt.partition, err, tt.err)
		}
		if n != nil {
			n.Close()
		}
	}
	var warnings []string
	n, err = Open([]string{diskFixture(t, "gpt-badprimary")}, Options{NoCache: true, Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil || len(warnings) == 0 || !strings.HasPrefix(warnings[0], "primary GPT at LBA 1 is invalid") {
		t.Errorf("warnings: %q, %v", warnings, err)
	}
	if n != nil {
		n.Close()
	}
	if _, err := Open(nil, Options{}); err == nil {
		t.Error("no input accepted")
	}
}

// References: the grammar README's "Command grammar" gives, on the
// example node.
func TestResolveRefs(t *testing.T) {
	n, err := Open([]string{exampleImage(t)}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const wordpress = "eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548"
	for _, tt := range []struct{ ref, want, err string }{
		{wordpress, wordpress, ""},
		{"eed07", wordpress, ""},
		{"containerd://" + wordpress, wordpress, ""},
		{"wordpress", wordpress, ""},
		{"wordpress-6d8f7b9c5-q2lzx/wordpress", wordpress, ""},
		{"blog/wordpress-6d8f7b9c5-q2lzx/wordpress", wordpress, ""},
		{"k8s.io/" + wordpress, wordpress, ""},
		{"apache-exporter", "", "matches 2 containers"},
		{"pod:blog/mysql-0", "", ""}, // one container: it resolves
		{"pod:blog/wordpress-6d8f7b9c5-q2lzx", "", "matches 3 containers"},
		{"docker://" + wordpress, "", "names a docker container, but partition 1"},
		{"cri-o://" + wordpress, "", "names a cri-o container"},
		{"pod:nope", "", "no container matches"},
		{"pod:a/b/c", "", "want pod:K8SNS/POD"},
	} {
		c, err := n.Resolve(tt.ref)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want %q", tt.ref, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.ref, err)
		case tt.want != "" && c.ID != tt.want:
			t.Errorf("%s: %s", tt.ref, c.ID)
		}
	}
	pod, err := n.ResolveAll("pod:blog/wordpress-6d8f7b9c5-q2lzx", ListOptions{})
	if err != nil || len(pod) != 3 {
		t.Fatalf("pod: %d containers, %v", len(pod), err)
	}
	withSandbox, err := n.ResolveAll("pod:wordpress-6d8f7b9c5-q2lzx", ListOptions{All: true})
	if err != nil || len(withSandbox) != 4 {
		t.Errorf("pod with its sandbox: %d containers, %v", len(withSandbox), err)
	}
}

func exampleImage(t *testing.T) string {
	t.Setenv("TMPDIR", t.TempDir())
	return filepath.Join("..", "testdata", "images", "example", "wordpress-node.raw.zst")
}

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{
		"eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548": "eed0799779d8",
		"debug-shell":                 "debug-shell",
		"my-very-long-container-name": "my-very-long-container-name",
		"0123456789ab":                "0123456789ab",
	} {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}
