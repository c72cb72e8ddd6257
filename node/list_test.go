package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ctrlift/ctrlift/containerd"
)

// cosState loads the containerd databases of containerd's COS test data
// (made by real containerd) as a root holding only them.
func cosState(t *testing.T) *containerd.State {
	t.Helper()
	m := fstest.MapFS{}
	for dst, src := range map[string]string{
		containerd.MetaDBPath:                                "meta.db",
		"io.containerd.snapshotter.v1.overlayfs/metadata.db": "overlayfs-metadata.db",
		"io.containerd.snapshotter.v1.native/metadata.db":    "native-metadata.db",
	} {
		b, err := os.ReadFile(filepath.Join("..", "containerd", "testdata", "cos", src))
		if err != nil {
			t.Fatal(err)
		}
		m["var/lib/containerd/"+dst] = &fstest.MapFile{Data: b, Mode: 0o600}
	}
	s, err := containerd.Load(m, "var/lib/containerd")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestResolve(t *testing.T) {
	s := cosState(t)
	const frontend = "350ec3c288e914e6f883e41d23ea437e9ebee7c3cb9842efb4fd0806e4ae65b7"
	for _, tt := range []struct{ ref, want, err string }{
		{frontend, frontend, ""},
		{"containerd://" + frontend, frontend, ""},
		{"350ec3", frontend, ""},
		{"frontend-7d9c8b5f4-x2x9z/frontend", frontend, ""},
		{"prod/frontend-7d9c8b5f4-x2x9z/frontend", frontend, ""},
		{"frontend", frontend, ""},
		{"k8s.io/" + frontend, frontend, ""},
		{"oneshot", "oneshot", ""},
		{"d", "", "matches 2 containers"}, // d14adba6... and debug-shell
		{"batch/frontend-7d9c8b5f4-x2x9z/frontend", "", "no container"},
		{"zzz", "", "no container"},
	} {
		c, err := resolve(s, "", tt.ref)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.ref, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.ref, err)
		case c.ID != tt.want:
			t.Errorf("%s: got %s", tt.ref, c.ID)
		}
	}
	var amb *AmbiguousError
	if _, err := resolve(s, "", "d"); !errors.As(err, &amb) || len(amb.Candidates) != 2 || !strings.Contains(err.Error(), "default/debug-shell") {
		t.Errorf("ambiguous: %v", err)
	}
	if c, err := resolve(s, "default", "d"); err != nil || c.ID != "debug-shell" {
		t.Errorf("ResolveIn: %v %v", c, err)
	}
}

func TestSelectContainers(t *testing.T) {
	s := cosState(t)
	names := func(cs []containerd.Container) []string {
		var out []string
		for _, c := range cs {
			n := c.ContainerName
			if n == "" {
				n = c.ID
			}
			out = append(out, n)
		}
		return out
	}
	// Every namespace: the containers started with ctr in "default" are
	// what an intruder leaves behind on a Kubernetes node.
	shown, hidden := selectContainers(s, "", ListOptions{})
	if got := strings.Join(names(shown), ","); got != "debug-shell,native-box,oneshot,frontend,report,log-shipper" {
		t.Errorf("default listing %s", got)
	}
	if hidden.Sandboxes != 2 || len(hidden.Namespaces) != 0 || hidden.Total() != 2 {
		t.Errorf("hidden %+v", hidden)
	}
	for _, h := range hidden.Containers {
		if h.Reason != "pod sandbox" || h.Container.Kind != "sandbox" {
			t.Errorf("hidden %s: %q", h.Container.ID, h.Reason)
		}
	}
	k8s, hidden := selectContainers(s, "k8s.io", ListOptions{})
	if len(k8s) != 3 || hidden.Namespaces["default"] != 3 || hidden.Total() != 5 {
		t.Errorf("-n k8s.io: %v, hidden %+v", names(k8s), hidden)
	}
	all, hidden := selectContainers(s, "", ListOptions{All: true})
	if len(all) != 8 || hidden.Total() != 0 {
		t.Errorf("--all: %d shown, %+v hidden", len(all), hidden)
	}
	def, _ := selectContainers(s, "default", ListOptions{})
	if len(def) != 3 {
		t.Errorf("-n default: %d", len(def))
	}
	f, err := ParseSupportFilter(strings.NewReader("---\nnames:\n  - log-ship\nimages:\n  - us-central1-docker.pkg.dev/acme-prod/web\nlabels:\n  - io.kubernetes.pod.namespace=batch\n"))
	if err != nil {
		t.Fatal(err)
	}
	shown, hidden = selectContainers(s, "", ListOptions{Support: f})
	if got := strings.Join(names(shown), ","); got != "debug-shell,native-box,oneshot" || hidden.Support != 3 {
		t.Errorf("custom filter: %v, %+v", names(shown), hidden)
	}
	if _, err := ParseSupportFilter(strings.NewReader("labels: [novalue]")); err == nil {
		t.Error("label without = accepted")
	}
	if _, err := ParseSupportFilter(strings.NewReader("names: {a: b}")); err == nil {
		t.Error("malformed yaml accepted")
	}
	if d := DefaultSupportFilter(); len(d.Labels) == 0 {
		t.Error("empty default filter")
	}
	kube := containerd.Container{Labels: map[string]string{"io.kubernetes.pod.namespace": "kube-system"}}
	if ok, why := DefaultSupportFilter().Match(&kube); !ok || !strings.Contains(why, "kube-system") {
		t.Errorf("kube-system not matched: %v %s", ok, why)
	}
}
