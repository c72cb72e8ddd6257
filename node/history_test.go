package node

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/vfs"
)

// openExample opens the bundled WordPress node, decompressed into a
// temporary file.
func openExample(t *testing.T) *Node {
	t.Helper()
	n, err := Open([]string{exampleImage(t)}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

const (
	snapshotsDir = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
	shellSHA256  = "7269232137042ace5698530a05f82c8be698e51754158b600ecb5e0ce8b7e942"
	shellMD5     = "acf34c5b013bba6800a1b7c83091b7ed"
	wordpressID  = "eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548"
	wordpressImg = "us-central1-docker.pkg.dev/acme-blog/web/wordpress:6.4.3-apache"
)

// History of paths the attacker touched in the example's web container,
// layer by layer: what the kernel's merge makes of each layer's entry.
func TestHistory(t *testing.T) {
	n := openExample(t)
	type hit struct{ what, layer, path string }
	for _, tt := range []struct {
		path string
		want []hit
	}{
		// Deleted from an image layer by the container.
		{"/var/log/apache2/access.log", []hit{
			{HitWhiteout, "overlayfs/10", "/var/log/apache2/access.log"},
			{HitHiddenBelow, "overlayfs/5", "/var/log/apache2/access.log"},
		}},
		// Edited: the copy-up hides the image's version.
		{"/etc/apache2/apache2.conf", []hit{
			{HitHolds, "overlayfs/10", "/etc/apache2/apache2.conf"},
			{HitHiddenBelow, "overlayfs/4", "/etc/apache2/apache2.conf"},
		}},
		// rm -rf and mkdir: the opaque directory hides the image's files,
		// and holds what was written into it since.
		{"/var/www/html/wp-content/cache/.cache-index", []hit{
			{HitOpaqueHides, "overlayfs/10", "/var/www/html/wp-content/cache"},
			{HitHiddenBelow, "overlayfs/5", "/var/www/html/wp-content/cache/.cache-index"},
		}},
		{"/var/www/html/wp-content/cache/page-home.html", []hit{
			{HitHolds, "overlayfs/10", "/var/www/html/wp-content/cache/page-home.html"},
			{HitHiddenBelow, "overlayfs/5", "/var/www/html/wp-content/cache/page-home.html"},
		}},
		{"/var/www/html/wp-content/cache", []hit{
			{HitHolds, "overlayfs/10", "/var/www/html/wp-content/cache"},
			{HitHiddenBelow, "overlayfs/5", "/var/www/html/wp-content/cache"},
		}},
		// Added by the container; from the base image, untouched.
		{"var/www/html/wp-content/uploads/shell.php", []hit{{HitHolds, "overlayfs/10", "/var/www/html/wp-content/uploads/shell.php"}}},
		{"/bin/busybox", []hit{{HitHolds, "overlayfs/1", "/bin/busybox"}}},
		// Directories merge: every layer that has one is seen.
		{"/", []hit{{HitHolds, "overlayfs/10", "/"}, {HitHolds, "overlayfs/5", "/"}, {HitHolds, "overlayfs/4", "/"}, {HitHolds, "overlayfs/1", "/"}}},
		{"/nowhere", nil},
	} {
		t.Run(tt.path, func(t *testing.T) {
			hits, err := n.History("blog/wordpress-6d8f7b9c5-q2lzx/wordpress", tt.path, LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []hit
			for _, h := range hits {
				got = append(got, hit{h.What, h.Layer, h.Path})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	// The layers' provenance: snapshot, the image layer it was unpacked
	// from (diff id, blob) and the history entry that made it; the
	// container's writable layer has no image layer.
	hits, err := n.History("eed07", "/var/log/apache2/access.log", LayerOptions{})
	if err != nil || len(hits) != 2 {
		t.Fatal(hits, err)
	}
	w, img := hits[0], hits[1]
	if !w.Whiteout || w.Type != "char" || w.Kind != "active" || w.SnapshotID != 10 || w.SnapshotKey != wordpressID ||
		w.LayerIndex != 0 || w.DiffID != "" || w.CreatedBy != "" || w.LayerDigest != "" || w.SHA256 != "" {
		t.Errorf("writable layer: %+v", w)
	}
	if img.Type != "file" || *img.Size != 12769 || img.SHA256 != "118f636569b29bfc777b645136678b83027bbe55e58686a026ba62bf10ee4d59" ||
		img.Kind != "committed" || img.SnapshotID != 5 || img.LayerIndex != 1 || img.LayerDir != snapshotsDir+"5/fs" ||
		img.SnapshotKey != "sha256:55589ffc23e181df6797c4aa8218c2305047f0b4eabbd90c9dd6b5a0f59f09bc" ||
		img.DiffID != "sha256:3105c0a4f22b6e8b63f06870bd80d182fbaeff091bf1e653b85519fe39d77ada" ||
		img.LayerDigest != "sha256:195d81e3881514229a1dc7a80a46542a97ee03c1f0ff59ad22a0e5ec5df510fa" || img.LayerSize != 7645 ||
		img.CreatedBy != "mkimages.py: wordpress 6.4.3" || img.Created == nil || img.Created.Year() != 2023 {
		t.Errorf("image layer: %+v", img)
	}
	// History pairs with the layers bottom up: the base layer's entry.
	if hits, err := n.History("eed07", "/bin/busybox", LayerOptions{}); err != nil || hits[0].CreatedBy != "mkimages.py: busybox base" ||
		hits[0].DiffID != "sha256:2e85624eddcb80984057f52ef1a9be41b3f21aebd8c2a60d67910979d9c14a7c" {
		t.Errorf("base layer: %+v %v", hits, err)
	}
	// A path is cleaned as written, never resolved through a symlink.
	if hits, err := n.History("eed07", "/etc/../../bin/busybox", LayerOptions{}); err != nil || len(hits) != 1 || hits[0].Path != "/bin/busybox" {
		t.Errorf("cleaned path: %+v %v", hits, err)
	}
}

// classify on layers the example does not have: a file where the lower
// layers have a directory, a deleted parent directory, metadata-only
// copy-ups, copying snapshotters.
func TestClassify(t *testing.T) {
	file := &vfs.Inode{Mode: vfs.TypeRegular | 0o644}
	dir := &vfs.Inode{Mode: vfs.TypeDir | 0o755}
	wh := &vfs.Inode{Mode: vfs.TypeChar}
	absent := layerLook{}
	holds := func(in *vfs.Inode) layerLook { return layerLook{entry: in} }
	for _, tt := range []struct {
		name   string
		looks  []layerLook
		copies bool
		want   []string // what, by layer index; "" for none
	}{
		{"file over file", []layerLook{holds(file), absent, holds(file)}, false, []string{HitHolds, "", HitHiddenBelow}},
		{"dir over dir", []layerLook{holds(dir), holds(dir)}, false, []string{HitHolds, HitHolds}},
		{"opaque dir", []layerLook{{entry: dir, opaque: true}, holds(dir)}, false, []string{HitHolds, HitHiddenBelow}},
		{"file below dir", []layerLook{holds(dir), holds(file)}, false, []string{HitHolds, HitHiddenBelow}},
		{"whiteout", []layerLook{{entry: wh, whiteout: true}, holds(file)}, false, []string{HitWhiteout, HitHiddenBelow}},
		{"re-created after a whiteout", []layerLook{holds(file), {entry: wh, whiteout: true}, holds(file)}, false, []string{HitHolds, HitWhiteout, HitHiddenBelow}},
		{"parent whited out", []layerLook{{hider: HitWhiteout, hiderDepth: 1, hiderInode: wh}, holds(file)}, false, []string{HitWhiteout, HitHiddenBelow}},
		{"parent replaced by a file", []layerLook{{hider: HitNonDirHides, hiderDepth: 1, hiderInode: file}, holds(file)}, false, []string{HitNonDirHides, HitHiddenBelow}},
		{"a hider with nothing below is left out", []layerLook{holds(file), {hider: HitOpaqueHides, hiderDepth: 1, hiderInode: dir}, absent}, false, []string{HitHolds, "", ""}},
		{"held under an opaque parent", []layerLook{{entry: file, hider: HitOpaqueHides, hiderDepth: 1, hiderInode: dir}, holds(file)}, false, []string{HitHolds, HitHiddenBelow}},
		{"metacopy: the data below holds too", []layerLook{{entry: file, metacopy: true}, holds(file), holds(file)}, false, []string{HitHolds, HitHolds, HitHiddenBelow}},
		{"copies: the top is the whole tree", []layerLook{absent, holds(file)}, true, []string{"", HitHiddenBelow}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]string, len(tt.looks))
			for _, h := range classify(tt.looks, tt.copies) {
				got[h.LayerIndex] = h.What
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The reverse lookup: from a file of the partition to its snapshot and
// the containers and images that have it.
func TestLocatePath(t *testing.T) {
	n := openExample(t)
	type user struct {
		name  string // container name or image
		index int
		what  string
	}
	for _, tt := range []struct {
		path              string
		snapshot          uint64
		inLayer           string
		containers, image []user
	}{
		// The stolen wp-config.php copy, in the container's writable layer.
		{snapshotsDir + "10/fs/tmp/.wpc", 10, "/tmp/.wpc", []user{{"wordpress", 0, HitHolds}}, nil},
		// The deleted access log: still in the image layer, hidden in the
		// container, seen in the image.
		{"/" + snapshotsDir + "5/fs/var/log/apache2/access.log", 5, "/var/log/apache2/access.log",
			[]user{{"wordpress", 1, HitHiddenBelow}}, []user{{wordpressImg, 0, HitHolds}}},
		// The base layer every image is built on; pod sandboxes too.
		{snapshotsDir + "1/fs/bin/busybox", 1, "/bin/busybox",
			[]user{{"15699113dcd7", 2, HitHolds}, {"apache-exporter", 2, HitHolds}, {"apache-exporter", 2, HitHolds}, {"mysql", 2, HitHolds}, {"b9803ff4c543", 2, HitHolds}, {"wordpress", 3, HitHolds}},
			[]user{{"gke.gcr.io/pause:3.8", 1, HitHolds}, {"quay.io/acme-blog/apache-exporter:v1.0.3", 1, HitHolds},
				{"us-central1-docker.pkg.dev/acme-blog/db/mysql:8.0.36", 1, HitHolds}, {wordpressImg, 2, HitHolds}}},
		{snapshotsDir + "5/fs", 5, "/", []user{{"wordpress", 1, HitHolds}}, []user{{wordpressImg, 0, HitHolds}}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			info, err := n.LocatePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if info.SnapshotID != tt.snapshot || info.Snapshotter != "overlayfs" || info.InLayer != tt.inLayer ||
				info.Record.Path != tt.inLayer || info.LayerDir != snapshotsDir+strings.TrimPrefix(info.LayerDir, snapshotsDir) {
				t.Errorf("%+v", info)
			}
			var cs, is []user
			for _, u := range info.Containers {
				name := u.ContainerName
				if name == "" {
					name = ShortID(u.ContainerID)
				}
				cs = append(cs, user{name, u.LayerIndex, u.What})
			}
			for _, u := range info.Images {
				is = append(is, user{u.Image, u.LayerIndex, u.What})
			}
			if !slices.Equal(cs, tt.containers) || !slices.Equal(is, tt.image) {
				t.Errorf("containers %v, images %v; want %v, %v", cs, is, tt.containers, tt.image)
			}
		})
	}
	info, err := n.LocatePath(snapshotsDir + "10/fs/tmp/.wpc")
	if err != nil || info.Kind != "active" || info.SnapshotKey != wordpressID || info.Record.SHA256 != "fdc7c1ff4ba6c8f156b1797a9960658740bea1a0f50b54adf460aeab3b4ff528" ||
		info.Containers[0].ContainerID != wordpressID || info.Containers[0].Pod != "blog/wordpress-6d8f7b9c5-q2lzx" || info.Containers[0].Image != wordpressImg {
		t.Errorf("%+v %v", info, err)
	}
	if _, err := n.LocatePath("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"); err == nil || !strings.Contains(err.Error(), "not inside the layer directory of a snapshot") {
		t.Errorf("outside the snapshots: %v", err)
	}
	if _, err := n.LocatePath(snapshotsDir + "10/fs/tmp/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no such file: %v", err)
	}
}
