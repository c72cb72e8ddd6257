package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/export/oci"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

const wordpressRef = "blog/wordpress-6d8f7b9c5-q2lzx/wordpress"

// The image archive of the example's web container, read by the tools
// that consume such archives: skopeo (oci-archive: and docker-archive:),
// umoci (an OCI layout, unpacked rootless) and docker load when a daemon
// runs. umoci's rootfs must be the container's filesystem as the plain
// tar export has it, entry for entry.
func TestExportOCI(t *testing.T) {
	n, err := Open([]string{exampleImage(t)}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	archive := filepath.Join(dir, "wordpress.oci.tar")
	res, err := n.ExportFile(wordpressRef, archive, ExportOptions{Format: FormatOCI})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	o := res.OCI
	if o == nil || o.Config != oci.ConfigOriginal || len(o.Layers) != 4 || !o.Layers[3].Changes || o.Layers[3].Source != "overlayfs/10" ||
		o.Name != "ctrlift/blog/wordpress-6d8f7b9c5-q2lzx/wordpress:eed0799779d8" || res.SHA256 != sha(data) || res.Size != int64(len(data)) {
		t.Fatalf("result %+v, OCI %+v", res, o)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	m := checkOCIArchive(t, data)
	for k, want := range map[string]string{
		oci.AnnotationSourceImage:    "us-central1-docker.pkg.dev/acme-blog/web/wordpress:6.4.3-apache",
		oci.AnnotationSourceManifest: "sha256:646eba61bf75428c7709754a894f5c091a481bf1bbc5aa9eff4cbfc865ddf10f",
		oci.AnnotationSourceConfig:   "sha256:1d882d4c4b50aca64a807e3af159506ed0fad5507ff53f4cc5e9779d179f9e62",
		oci.AnnotationLayers:         "overlayfs/1,overlayfs/4,overlayfs/5,overlayfs/10",
		oci.AnnotationPrefix + "pod": "blog/wordpress-6d8f7b9c5-q2lzx",
	} {
		if m.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], want)
		}
	}

	// The same input, the same bytes, to a file or a writer.
	var again bytes.Buffer
	if _, err := n.Export(wordpressRef, &again, ExportOptions{Format: FormatOCI}); err != nil || !bytes.Equal(again.Bytes(), data) {
		t.Errorf("second export differs (%v)", err)
	}
	var plain bytes.Buffer
	if _, err := n.Export(wordpressRef, &plain, ExportOptions{Volumes: VolumesNone}); err != nil { // an image holds no volumes
		t.Fatal(err)
	}
	image := filepath.Join(dir, "image.oci.tar")
	if _, err := n.ExportFile(wordpressRef, image, ExportOptions{Format: FormatOCI, NoChanges: true}); err != nil {
		t.Fatal(err)
	}
	zst := filepath.Join(dir, "zstd.oci.tar")
	zres, err := n.ExportFile(wordpressRef, zst, ExportOptions{Format: FormatOCI, Compression: export.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	zdata, _ := os.ReadFile(zst)
	checkOCIArchive(t, zdata)
	for i, l := range zres.OCI.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" || l.DiffID != o.Layers[i].DiffID {
			t.Errorf("zstd layer %d: %+v, gzip's diff id %s", i, l, o.Layers[i].DiffID)
		}
	}

	// An image's rootfs chain, by snapshot key: its layers, its config.
	t.Run("snapshot", func(t *testing.T) {
		ls, err := n.SnapshotLayers("sha256:55589ffc23e181df6797c4aa8218c2305047f0b4eabbd90c9dd6b5a0f59f09bc", "", LayerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		res, err := n.ExportLayers(ls, &buf, ExportOptions{Format: FormatOCI})
		if err != nil {
			t.Fatal(err)
		}
		m := checkOCIArchive(t, buf.Bytes())
		if o := res.OCI; o.Name != "ctrlift/snapshot:55589ffc23e1" || o.Config != oci.ConfigOriginal || len(o.Layers) != 3 ||
			m.Annotations[oci.AnnotationChanges] != "none" || m.Annotations[oci.AnnotationSourceConfig] != "sha256:1d882d4c4b50aca64a807e3af159506ed0fad5507ff53f4cc5e9779d179f9e62" {
			t.Errorf("%+v, annotations %v", o, m.Annotations)
		}
	})

	// When the content store no longer holds the config: the platform of
	// the node's other images, the run configuration of the spec.
	t.Run("synthesized", func(t *testing.T) {
		st, _ := n.State()
		c, err := n.Resolve(wordpressRef)
		if err != nil {
			t.Fatal(err)
		}
		src, plat, ws := n.imageSource(st, c.Namespace, "gone.example/app:1", "sha256:"+strings.Repeat("0", 64), "")
		if src.Config != nil || plat.Architecture != "amd64" || plat.OS != "linux" || len(ws) != 1 || !strings.Contains(ws[0], "a minimal config was made from the container's OCI spec") {
			t.Errorf("source %+v, platform %+v, warnings %q", src, plat, ws)
		}
		sc := specConfig(c.Spec)
		if fmt.Sprint(sc.Cmd) != "[/usr/local/bin/apache2-foreground]" || sc.WorkingDir != "/var/www/html" || sc.User != "" ||
			!strings.Contains(strings.Join(sc.Env, " "), "HOSTNAME=wordpress-6d8f7b9c5-q2lzx") {
			t.Errorf("spec config %+v", sc)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		testutil.NeedTools(t, "skopeo")
		var insp struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
			Env          []string
		}
		if err := json.Unmarshal(runTool(t, "skopeo", "inspect", "oci-archive:"+archive), &insp); err != nil {
			t.Fatal(err)
		}
		var layers []string
		for _, l := range o.Layers {
			layers = append(layers, l.Digest)
		}
		if insp.Digest != o.ManifestDigest || insp.Architecture != "amd64" || insp.Os != "linux" || fmt.Sprint(insp.Layers) != fmt.Sprint(layers) ||
			!strings.Contains(strings.Join(insp.Env, " "), "WORDPRESS_VERSION=6.4.3") {
			t.Errorf("skopeo inspect oci-archive: %+v", insp)
		}
		// By its name: the OCI tag, and the docker archive's RepoTags.
		runTool(t, "skopeo", "inspect", "oci-archive:"+archive+":eed0799779d8")
		if err := json.Unmarshal(runTool(t, "skopeo", "inspect", "docker-archive:"+archive+":"+o.Name), &insp); err != nil || len(insp.Layers) != 4 {
			t.Errorf("skopeo inspect docker-archive: %+v %v", insp, err)
		}
		runTool(t, "skopeo", "inspect", "oci-archive:"+zst)
		out := filepath.Join(t.TempDir(), "dir")
		runTool(t, "skopeo", "copy", "oci-archive:"+archive, "dir:"+out)
		if b, err := os.ReadFile(filepath.Join(out, "manifest.json")); err != nil || sha(b) != strings.TrimPrefix(o.ManifestDigest, "sha256:") {
			t.Errorf("skopeo copy to dir: the manifest changed (%v)", err)
		}
		// The docker side, read the way podman load reads it.
		runTool(t, "skopeo", "copy", "docker-archive:"+archive, "oci:"+filepath.Join(t.TempDir(), "layout")+":x")
	})

	t.Run("umoci", func(t *testing.T) {
		testutil.NeedTools(t, "umoci")
		want := testutil.TarToManifest(t, plain.Bytes())
		got := umociRootfs(t, data, "eed0799779d8")
		compareRootfs(t, want, got)
		if _, ok := got["/var/www/html/wp-content/uploads/shell.php"]; !ok {
			t.Error("the web shell is not in the image")
		}
		if _, ok := got["/var/log/apache2/access.log"]; ok {
			t.Error("the deleted access log is in the image")
		}
		// The image alone: as the image had it.
		img, _ := os.ReadFile(image)
		got = umociRootfs(t, img, "eed0799779d8-image")
		if _, ok := got["/var/www/html/wp-content/uploads/shell.php"]; ok {
			t.Error("--no-changes: the web shell is in the image")
		}
		if _, ok := got["/var/log/apache2/access.log"]; !ok {
			t.Error("--no-changes: the access log is missing")
		}
	})

	t.Run("docker", func(t *testing.T) {
		testutil.NeedTools(t, "docker")
		if err := exec.Command("docker", "info").Run(); err != nil {
			t.Skip("no docker daemon running")
		}
		out := string(runTool(t, "docker", "load", "-i", archive))
		defer exec.Command("docker", "image", "rm", o.Name).Run()
		if !strings.Contains(out, "Loaded image: "+o.Name) {
			t.Fatalf("docker load: %s", out)
		}
		// The filesystem of a container made from it.
		name := fmt.Sprintf("ctrlift-oci-test-%d", os.Getpid())
		runTool(t, "docker", "create", "--name", name, o.Name)
		defer exec.Command("docker", "rm", name).Run()
		fsys := testutil.TarToManifest(t, runTool(t, "docker", "export", name))
		if _, ok := fsys["/var/www/html/wp-content/uploads/shell.php"]; !ok {
			t.Error("docker: the web shell is not in the image")
		}
		if _, ok := fsys["/var/log/apache2/access.log"]; ok {
			t.Error("docker: the deleted access log is in the image")
		}
	})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	c := exec.Command(name, args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

type ociManifest struct {
	Config struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

// checkOCIArchive checks the archive's structure on its own: names,
// digests of the blobs, diff ids of the layers, the layer count of the
// history, and manifest.json pointing into the same blobs.
func checkOCIArchive(t *testing.T, data []byte) ociManifest {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "./") {
			t.Errorf("entry %q", h.Name)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
		if hx, ok := strings.CutPrefix(h.Name, "blobs/sha256/"); ok && hx != "" && sha(b) != hx {
			t.Errorf("%s holds sha256:%s", h.Name, sha(b))
		}
	}
	blob := func(d string) []byte { return files["blobs/"+strings.Replace(d, ":", "/", 1)] }
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	var m ociManifest
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			EmptyLayer bool `json:"empty_layer"`
		} `json:"history"`
	}
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if json.Unmarshal(files["index.json"], &idx) != nil || len(idx.Manifests) != 1 ||
		json.Unmarshal(blob(idx.Manifests[0].Digest), &m) != nil || json.Unmarshal(blob(m.Config.Digest), &cfg) != nil ||
		json.Unmarshal(files["manifest.json"], &dm) != nil || len(dm) != 1 || string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("layout: index.json %s, manifest.json %s", files["index.json"], files["manifest.json"])
	}
	layers := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || layers != len(m.Layers) || len(dm[0].Layers) != len(m.Layers) ||
		dm[0].Config != "blobs/"+strings.Replace(m.Config.Digest, ":", "/", 1) || len(dm[0].RepoTags) != 1 {
		t.Fatalf("%d layers, %d diff ids, %d history layers; manifest.json %+v", len(m.Layers), len(cfg.RootFS.DiffIDs), layers, dm)
	}
	for i, l := range m.Layers {
		b := blob(l.Digest)
		if int64(len(b)) != l.Size || dm[0].Layers[i] != "blobs/"+strings.Replace(l.Digest, ":", "/", 1) {
			t.Errorf("layer %d: %d bytes, %+v; manifest.json %s", i, len(b), l, dm[0].Layers[i])
		}
		var r io.Reader
		switch {
		case strings.HasSuffix(l.MediaType, "+gzip"):
			r, _ = gzip.NewReader(bytes.NewReader(b))
		case strings.HasSuffix(l.MediaType, "+zstd"):
			z, _ := zstd.NewReader(bytes.NewReader(b))
			defer z.Close()
			r = z
		default:
			r = bytes.NewReader(b)
		}
		h := sha256.New()
		if r == nil {
			t.Fatalf("layer %d: not %s", i, l.MediaType)
		}
		if _, err := io.Copy(h, r); err != nil || "sha256:"+hex.EncodeToString(h.Sum(nil)) != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff id %s (%v)", i, cfg.RootFS.DiffIDs[i], err)
		}
	}
	return m
}

// umociRootfs extracts the archive as an OCI layout, unpacks tag with
// umoci --rootless and reads the rootfs back as manifest lines. Owners
// come from the user.rootlesscontainers xattr umoci records them in
// (none: root); symlinks can hold no user xattr, so theirs are unknown.
func umociRootfs(t *testing.T, data []byte, tag string) map[string]testutil.ManifestLine {
	t.Helper()
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(layout, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			err = os.MkdirAll(p, 0o755)
		} else {
			b, _ := io.ReadAll(tr)
			err = os.WriteFile(p, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bundle := filepath.Join(work, "bundle")
	runTool(t, "umoci", "unpack", "--rootless", "--image", layout+":"+tag, bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	out := map[string]testutil.ManifestLine{}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		name := "/" + filepath.ToSlash(rel)
		if rel == "." {
			name = "/"
		}
		mode := uint32(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		m := testutil.ManifestLine{Path: name, Mode: fmt.Sprintf("%04o", mode), MtimeNs: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode().IsDir():
			m.Type = "dir"
		case fi.Mode().IsRegular():
			m.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m.SHA256 = sha(b)
			size := int64(len(b))
			m.Size = &size
		case fi.Mode()&fs.ModeSymlink != 0:
			m.Type = "symlink"
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m.Target = &target
		case fi.Mode()&fs.ModeNamedPipe != 0:
			m.Type = "fifo"
		case fi.Mode()&fs.ModeCharDevice != 0:
			m.Type = "char"
		case fi.Mode()&fs.ModeDevice != 0:
			m.Type = "block"
		default:
			m.Type = fi.Mode().Type().String()
		}
		if m.Type != "symlink" {
			buf := make([]byte, 64)
			if n, err := unix.Lgetxattr(p, "user.rootlesscontainers", buf); err == nil {
				m.UID, m.GID = rootlessOwner(buf[:n])
			} else if !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("%s: %w", p, err)
			}
			if os.Geteuid() == 0 {
				m.Xattrs = xattrs(t, p)
			}
		}
		out[name] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rootlessOwner decodes umoci's rootlesscontainers.Resource protobuf:
// field 1 the uid, field 2 the gid, varints; 0xFFFFFFFF is "unchanged":
// the unpacking user's, which rootless umoci maps to the container's root.
func rootlessOwner(b []byte) (uid, gid uint32) {
	defer func() {
		if uid == 1<<32-1 {
			uid = 0
		}
		if gid == 1<<32-1 {
			gid = 0
		}
	}()
	for len(b) > 0 {
		key := b[0]
		b = b[1:]
		var v uint64
		for shift := 0; len(b) > 0; shift += 7 {
			c := b[0]
			b = b[1:]
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				break
			}
		}
		switch key {
		case 0x08:
			uid = uint32(v)
		case 0x10:
			gid = uint32(v)
		}
	}
	return uid, gid
}

func xattrs(t *testing.T, p string) map[string]string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || name == "user.rootlesscontainers" {
			continue
		}
		v := make([]byte, 4096)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("%s: %s: %v", p, name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v[:k])
	}
	return out
}

// compareRootfs compares what rootless umoci can restore: every path,
// its type; the permission bits and owner of all but symlinks (whose
// owner no user xattr can hold), their xattrs when root (security.* are
// root's), the content and mtime of files, the target of symlinks.
func compareRootfs(t *testing.T, want, got map[string]testutil.ManifestLine) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, "missing "+p)
			continue
		}
		same := w.Type == g.Type
		switch w.Type {
		case "symlink":
			same = same && g.Target != nil && *w.Target == *g.Target
		default:
			same = same && w.Mode == g.Mode && w.UID == g.UID && w.GID == g.GID
			if w.Type == "file" {
				same = same && w.SHA256 == g.SHA256 && w.MtimeNs/1e9 == g.MtimeNs/1e9
			}
			if os.Geteuid() == 0 {
				wx := map[string]string{}
				for k, v := range w.Xattrs {
					b, _ := base64.StdEncoding.DecodeString(v)
					wx[k] = string(b)
				}
				same = same && fmt.Sprint(wx) == fmt.Sprint(orEmpty(g.Xattrs))
			}
		}
		if !same {
			diffs = append(diffs, fmt.Sprintf("%s:\n  export %s\n  umoci  %s", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "unexpected "+p)
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("... %d more", len(diffs)-30))
		}
		t.Errorf("umoci's rootfs differs from the tar export in %d entries:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	if len(want) < 300 {
		t.Errorf("only %d entries compared", len(want))
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// A copying snapshotter's container (native): each snapshot a complete
// tree, rebuilt as what differs from its parent, so that umoci's rootfs
// is the container's filesystem and nothing deleted comes back.
func TestExportOCINative(t *testing.T) {
	n, err := Open([]string{cosNode(t)}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var buf, plain bytes.Buffer
	res, err := n.Export("native-box", &buf, ExportOptions{Format: FormatOCI})
	if err != nil {
		t.Fatal(err)
	}
	checkOCIArchive(t, buf.Bytes())
	if o := res.OCI; len(o.Layers) != 2 || o.Layers[0].Source != "native/1" || !o.Layers[1].Changes || o.Config != oci.ConfigOriginal || len(res.Warnings) != 0 {
		t.Fatalf("%+v, warnings %q", o, res.Warnings)
	}
	if _, err := n.Export("native-box", &plain, ExportOptions{Volumes: VolumesNone}); err != nil {
		t.Fatal(err)
	}
	testutil.NeedTools(t, "umoci")
	got := umociRootfs(t, buf.Bytes(), "native-box")
	compareRootfs(t, testutil.TarToManifest(t, plain.Bytes()), got)
	if _, ok := got["/etc/motd"]; ok {
		t.Error("the file deleted in the container is back")
	}
}

// A rootless Podman container's image: its layers' overlay markers are
// in user.overlay.*, and the OCI layers must carry them as whiteouts and
// opaque directories (rl-changed replaced /opt/app, so the image's files
// under it must not come back). umoci's rootfs has every path the plain
// export has, and no other.
func TestExportOCIRootless(t *testing.T) {
	testutil.NeedTools(t, "umoci")
	n, _ := cstorageFixture(t)
	c, err := n.Resolve("rl-changed")
	if err != nil {
		t.Fatal(err)
	}
	var plain, img bytes.Buffer
	if _, err := n.Export(c.ID, &plain, ExportOptions{Volumes: VolumesNone}); err != nil {
		t.Fatal(err)
	}
	res, err := n.Export(c.ID, &img, ExportOptions{Format: FormatOCI})
	if err != nil {
		t.Fatal(err)
	}
	want := testutil.TarToManifest(t, plain.Bytes())
	got := umociRootfs(t, img.Bytes(), res.OCI.Name[strings.LastIndex(res.OCI.Name, ":")+1:])
	var diffs []string
	for p := range want {
		if _, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "unexpected "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 || len(want) < 20 {
		t.Errorf("umoci's rootfs vs the export (%d paths): %q", len(want), diffs)
	}
}
