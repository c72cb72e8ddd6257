package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// testLayers are two snapshot directories of one filesystem, as
// containerd's overlayfs snapshotter leaves them: "lower" an image layer,
// "upper" a container's writable layer with a whiteout, an opaque
// directory, a hardlinked pair, a symlink, an xattr and a file with a
// 3 MiB hole.
func testLayers() (*memFS, []layers.Layer) {
	m := newMemFS()
	m.dir("lower", 0o755)
	m.file("lower/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	m.file("lower/var/log/access.log", "GET /\n")
	m.file("lower/var/cache/old", "old\n")
	m.symlink("lower/bin/sh", "/bin/busybox")

	m.dir("upper", 0o755)
	m.file("upper/etc/passwd", "root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n")
	m.whiteout("upper/var/log/access.log")
	m.dir("upper/var/cache", 0o700, vfs.Xattr{Name: "trusted.overlay.opaque", Value: []byte("y")})
	m.file("upper/var/cache/new", "new\n")
	m.file("upper/www/shell.php", "<?php system($_GET['c']);", vfs.Xattr{Name: "user.mark", Value: []byte("1")})
	m.link("upper/www/shell.php", "upper/www/thumb.php")
	m.sparse("upper/var/lib/lastlog", 3<<20+5, 3<<20, "tail!")
	return m, []layers.Layer{{FS: m, Dir: "upper", Name: "overlayfs/10"}, {FS: m, Dir: "lower", Name: "overlayfs/1"}}
}

var sourceConfig = []byte(`{"architecture":"arm64","variant":"v8","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},` +
	`"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},` +
	`"history":[{"created_by":"ADD rootfs"},{"created_by":"ENV PATH=/bin","empty_layer":true}],"x-unknown":{"kept":true}}`)

var sourceManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:abc"}}`)

func testImage() *Image {
	_, ls := testLayers()
	return &Image{
		Layers:   ls,
		Writable: true,
		Source:   Source{Name: "registry.example/app:1.0", Manifest: sourceManifest, Config: sourceConfig},
		Name:     Reference([]string{"ctrlift", "prod", "web-1", "web"}, "0123456789ab"),
		Created:  time.Date(2026, 11, 27, 9, 1, 27, 653146966, time.UTC),
	}
}

type archive struct {
	names []string
	hdrs  map[string]*tar.Header
	files map[string][]byte
}

func readArchive(t *testing.T, b []byte) *archive {
	t.Helper()
	a := &archive{hdrs: map[string]*tar.Header{}, files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.names = append(a.names, h.Name)
		a.hdrs[h.Name], a.files[h.Name] = h, data
	}
}

func (a *archive) json(t *testing.T, name string, v any) {
	t.Helper()
	b, ok := a.files[name]
	if !ok {
		t.Fatalf("%s missing from the archive", name)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func decompress(t *testing.T, b []byte, mediaType string) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch {
	case strings.HasSuffix(mediaType, "+gzip"):
		z, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = z
	case strings.HasSuffix(mediaType, "+zstd"):
		z, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		defer z.Close()
		r = z
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type layerEntry struct {
	hdr  *tar.Header
	data []byte
}

func readLayer(t *testing.T, b []byte) map[string]layerEntry {
	t.Helper()
	out := map[string]layerEntry{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = layerEntry{h, data}
	}
}

// checkArchive checks what every consumer relies on, and returns the
// manifest, config and layers (base first, uncompressed).
func checkArchive(t *testing.T, b []byte, res *Result) (manifest, map[string]json.RawMessage, [][]byte) {
	t.Helper()
	a := readArchive(t, b)
	for i, n := range a.names {
		if strings.HasPrefix(n, "./") || strings.HasPrefix(n, "/") {
			t.Errorf("entry %q", n)
		}
		if i > 0 && n <= a.names[i-1] {
			t.Errorf("entries out of order: %q after %q", n, a.names[i-1])
		}
		if h := a.hdrs[n]; h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Format == tar.FormatGNU {
			t.Errorf("%s: header %+v", n, h)
		}
	}
	if want := `{"imageLayoutVersion":"1.0.0"}`; string(a.files["oci-layout"]) != want {
		t.Errorf("oci-layout: %s", a.files["oci-layout"])
	}
	// Every blob is named by its digest.
	for n, data := range a.files {
		if hexd, ok := strings.CutPrefix(n, "blobs/sha256/"); ok && hexd != "" && sum(data) != "sha256:"+hexd {
			t.Errorf("%s holds %s", n, sum(data))
		}
	}
	var idx index
	a.json(t, "index.json", &idx)
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeIndex || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %+v", idx)
	}
	md := idx.Manifests[0]
	if md.Digest != res.ManifestDigest || md.MediaType != MediaTypeManifest || int64(len(a.files[blobPath(md.Digest)])) != md.Size {
		t.Errorf("index.json's manifest %+v, result %s", md, res.ManifestDigest)
	}
	var m manifest
	a.json(t, blobPath(md.Digest), &m)
	var cfg map[string]json.RawMessage
	a.json(t, blobPath(m.Config.Digest), &cfg)
	if m.Config.MediaType != MediaTypeConfig || m.Config.Digest != res.ConfigDigest {
		t.Errorf("config descriptor %+v", m.Config)
	}
	var dm []dockerManifest
	a.json(t, "manifest.json", &dm)
	if len(dm) != 1 || dm[0].Config != blobPath(m.Config.Digest) || len(dm[0].Layers) != len(m.Layers) {
		t.Fatalf("manifest.json %+v", dm)
	}
	var rf rootFS
	json.Unmarshal(cfg["rootfs"], &rf)
	if rf.Type != "layers" || len(rf.DiffIDs) != len(m.Layers) || len(res.Layers) != len(m.Layers) {
		t.Fatalf("rootfs %+v for %d layers", rf, len(m.Layers))
	}
	var hist []historyEntry
	json.Unmarshal(cfg["history"], &hist)
	nonEmpty := 0
	for _, h := range hist {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if cfg["history"] != nil && nonEmpty != len(m.Layers) {
		t.Errorf("history has %d layer entries for %d layers: %s", nonEmpty, len(m.Layers), cfg["history"])
	}
	var tars [][]byte
	for i, l := range m.Layers {
		if dm[0].Layers[i] != blobPath(l.Digest) {
			t.Errorf("manifest.json layer %d: %s, manifest %s", i, dm[0].Layers[i], l.Digest)
		}
		blob, ok := a.files[blobPath(l.Digest)]
		if !ok || int64(len(blob)) != l.Size {
			t.Fatalf("layer %d blob %s: %d bytes, descriptor %d", i, l.Digest, len(blob), l.Size)
		}
		tr := decompress(t, blob, l.MediaType)
		if sum(tr) != rf.DiffIDs[i] || res.Layers[i].DiffID != rf.DiffIDs[i] || res.Layers[i].Digest != l.Digest {
			t.Errorf("layer %d: diff id %s, uncompressed %s, result %+v", i, rf.DiffIDs[i], sum(tr), res.Layers[i])
		}
		tars = append(tars, tr)
	}
	return m, cfg, tars
}

func TestWrite(t *testing.T) {
	img := testImage()
	var buf bytes.Buffer
	res, err := Write(&buf, img, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m, cfg, tars := checkArchive(t, buf.Bytes(), res)
	if len(tars) != 2 || m.Layers[0].MediaType != MediaTypeLayer+"+gzip" || !res.Layers[1].Changes || res.Layers[0].Changes || res.Config != ConfigOriginal {
		t.Fatalf("layers %+v, result %+v", m.Layers, res)
	}
	a := readArchive(t, buf.Bytes())
	var idx index
	a.json(t, "index.json", &idx)
	ann := idx.Manifests[0].Annotations
	for k, want := range map[string]string{
		AnnotationRefName:        "0123456789ab",
		AnnotationImageName:      "ctrlift/prod/web-1/web:0123456789ab",
		AnnotationSourceConfig:   sum(sourceConfig),
		AnnotationSourceManifest: sum(sourceManifest),
		AnnotationBaseDigest:     sum(sourceManifest),
		AnnotationBaseName:       "registry.example/app:1.0",
		AnnotationSourceDiffIDs:  "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		AnnotationLayers:         "overlayfs/1,overlayfs/10",
		AnnotationChanges:        "top layer",
	} {
		if ann[k] != want || (k != AnnotationRefName && k != AnnotationImageName && m.Annotations[k] != want) {
			t.Errorf("annotation %s: index %q, manifest %q, want %q", k, ann[k], m.Annotations[k], want)
		}
	}
	if p := idx.Manifests[0].Platform; p == nil || p.Architecture != "arm64" || p.Variant != "v8" || p.OS != "linux" {
		t.Errorf("platform %+v", p)
	}
	// The source blobs are kept, unreferenced, so the annotations can be
	// checked.
	if !bytes.Equal(a.files[blobPath(sum(sourceConfig))], sourceConfig) || !bytes.Equal(a.files[blobPath(sum(sourceManifest))], sourceManifest) {
		t.Error("source blobs not kept")
	}
	var dm []dockerManifest
	a.json(t, "manifest.json", &dm)
	if len(dm[0].RepoTags) != 1 || dm[0].RepoTags[0] != img.Name {
		t.Errorf("RepoTags %v", dm[0].RepoTags)
	}
	// The config: the source's, with its unknown fields, new diff ids and
	// one more history entry, for the writable layer.
	var hist []historyEntry
	json.Unmarshal(cfg["history"], &hist)
	if len(hist) != 3 || hist[0].CreatedBy != "ADD rootfs" || !hist[1].EmptyLayer || hist[2].Created != "2026-11-27T09:01:27.653146966Z" ||
		!strings.Contains(hist[2].Comment, "overlayfs/10") || string(cfg["x-unknown"]) != `{"kept":true}` || string(cfg["config"]) != `{"Env":["PATH=/bin"],"Cmd":["sh"]}` {
		t.Errorf("config: %s", a.files[blobPath(m.Config.Digest)])
	}
	// The archive's own entries carry the container's time, to the second.
	if h := a.hdrs["index.json"]; !h.ModTime.Equal(time.Unix(img.Created.Unix(), 0)) || h.Mode != 0o644 {
		t.Errorf("index.json header %+v", h)
	}

	// The layers: one snapshot each, whiteouts as .wh. entries, PAX
	// xattrs and ns times, no GNU sparse entry.
	lower, upper := readLayer(t, tars[0]), readLayer(t, tars[1])
	if _, ok := lower["var/log/access.log"]; !ok || len(lower) != 10 {
		t.Errorf("lower layer: %v", keys(lower))
	}
	for _, name := range []string{"var/log/.wh.access.log", "var/cache/.wh..wh..opq", "var/cache/new", "www/shell.php", "etc/passwd"} {
		if _, ok := upper[name]; !ok {
			t.Errorf("upper layer lacks %s: %v", name, keys(upper))
		}
	}
	if e := upper["www/thumb.php"]; e.hdr == nil || e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "www/shell.php" {
		t.Errorf("hardlink: %+v", e.hdr)
	}
	if e := upper["www/shell.php"]; e.hdr.PAXRecords["SCHILY.xattr.user.mark"] != "1" || e.hdr.ModTime.Nanosecond() != 123456789 || e.hdr.Uid != 33 {
		t.Errorf("shell.php: %+v", e.hdr)
	}
	if e := upper["var/cache/"]; e.hdr == nil || e.hdr.Mode != 0o700 || len(e.hdr.PAXRecords) > 0 && e.hdr.PAXRecords["SCHILY.xattr.trusted.overlay.opaque"] != "" {
		t.Errorf("opaque directory: %+v", e.hdr)
	}
	for _, tr := range tars {
		if bytes.Contains(tr, []byte("GNU.sparse")) || bytes.Contains(tr, []byte("GNUSparseFile")) {
			t.Error("a layer holds a GNU sparse entry")
		}
	}
	ll := upper["var/lib/lastlog"]
	want := append(make([]byte, 3<<20), "tail!"...)
	if ll.hdr == nil || ll.hdr.Typeflag != tar.TypeReg || !bytes.Equal(ll.data, want) {
		t.Errorf("the file with a hole is not written out with zeros: %+v, %d bytes", ll.hdr, len(ll.data))
	}
	if res.Entries != int64(len(lower)+len(upper)) {
		t.Errorf("entries %d, layers hold %d", res.Entries, len(lower)+len(upper))
	}

	// Byte-identical the second time, whatever the staging directory.
	var again bytes.Buffer
	if _, err := Write(&again, testImage(), Options{}); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("second archive differs (%v)", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWriteCompressions(t *testing.T) {
	for _, c := range []export.Compression{export.None, export.Zstd} {
		var buf bytes.Buffer
		res, err := Write(&buf, testImage(), Options{Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		m, _, _ := checkArchive(t, buf.Bytes(), res)
		want, _ := LayerMediaType(c)
		for i, l := range m.Layers {
			if l.MediaType != want || c == export.None && l.Digest != res.Layers[i].DiffID {
				t.Errorf("%s: layer %+v", c, l)
			}
		}
	}
	if _, err := Write(io.Discard, testImage(), Options{Compression: "lz4"}); err == nil {
		t.Error("lz4 accepted")
	}
}

// The image alone: the writable layer left out, the source history kept.
func TestWriteNoChanges(t *testing.T) {
	img := testImage()
	img.NoChanges = true
	var buf bytes.Buffer
	res, err := Write(&buf, img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, cfg, tars := checkArchive(t, buf.Bytes(), res)
	var hist []historyEntry
	json.Unmarshal(cfg["history"], &hist)
	if len(tars) != 1 || len(hist) != 2 || m.Annotations[AnnotationChanges] != "left out" || m.Annotations[AnnotationBaseDigest] != "" {
		t.Errorf("%d layers, history %s, annotations %v", len(tars), cfg["history"], m.Annotations)
	}
}

// Without the source config: one made from Config, with a history that
// counts the layers.
func TestWriteSynthesizedConfig(t *testing.T) {
	img := testImage()
	img.Source = Source{}
	img.Config = Config{Architecture: "amd64", Env: []string{"A=1"}, Cmd: []string{"/entry", "x"}, WorkingDir: "/srv", User: "33:33", Created: img.Created}
	var buf bytes.Buffer
	res, err := Write(&buf, img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, cfg, _ := checkArchive(t, buf.Bytes(), res)
	var rc runConfig
	json.Unmarshal(cfg["config"], &rc)
	var arch, os string
	json.Unmarshal(cfg["architecture"], &arch)
	json.Unmarshal(cfg["os"], &os)
	if res.Config != ConfigSynthesized || m.Annotations[AnnotationConfig] != ConfigSynthesized || arch != "amd64" || os != "linux" ||
		rc.User != "33:33" || rc.WorkingDir != "/srv" || len(rc.Cmd) != 2 || rc.Env[0] != "A=1" || m.Annotations[AnnotationSourceConfig] != "" {
		t.Errorf("config %s, annotations %v", buf.Bytes(), m.Annotations)
	}

	// A source history that does not count the layers is replaced.
	img = testImage()
	img.Source.Config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[{"created_by":"a"},{"created_by":"b"}]}`)
	buf.Reset()
	if res, err = Write(&buf, img, Options{}); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, buf.Bytes(), res)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "history has 2 layer entries for the 1 image layers") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// Holes are written out as zeros only within the bound; a forged size
// past it fails, naming the bound.
func TestWriteHoleBound(t *testing.T) {
	_, err := Write(io.Discard, testImage(), Options{MaxHoleBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "bytes of holes") || !strings.Contains(err.Error(), "var/lib/lastlog") {
		t.Errorf("err = %v", err)
	}
	// A filesystem's files together map no more data than it holds.
	img := testImage()
	img.Layers[0].FS.(*memFS).bound = 64
	if _, err := Write(io.Discard, img, Options{}); err == nil || !strings.Contains(err.Error(), "forged block map") {
		t.Errorf("err = %v", err)
	}
}

func TestReference(t *testing.T) {
	for _, tt := range []struct {
		parts []string
		tag   string
		want  string
	}{
		{[]string{"ctrlift", "blog", "wordpress-6d8f7b9c5-q2lzx", "wordpress"}, "eed0799779d8", "ctrlift/blog/wordpress-6d8f7b9c5-q2lzx/wordpress:eed0799779d8"},
		{[]string{"ctrlift", "k8s.io"}, "debug-shell", "ctrlift/k8s.io:debug-shell"},
		{[]string{"CtrLift", "My Pod!!", "..x..", ""}, ".-tag", "ctrlift/my-pod/x:tag"},
		{[]string{"ctrlift", "a__b", "c--d"}, strings.Repeat("t", 200), "ctrlift/a-b/c-d:" + strings.Repeat("t", 128)},
		{nil, "", "image:latest"},
	} {
		if got := Reference(tt.parts, tt.tag); got != tt.want {
			t.Errorf("Reference(%q, %q) = %q, want %q", tt.parts, tt.tag, got, tt.want)
		}
	}
	if tagOf("ctrlift/x:1") != "1" || tagOf("host:5000/x") != "latest" {
		t.Error("tagOf")
	}
}

// Complete trees, each copied from the next (containerd's native
// snapshotter): each layer is what differs from the one below.
func TestWriteCopies(t *testing.T) {
	m := newMemFS()
	for _, d := range []string{"base", "top"} {
		m.dir(d, 0o755)
		m.file(d+"/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
		m.file(d+"/bin/tool", "#!/bin/sh\n")
	}
	m.file("base/etc/motd", "hello\n")
	m.byPath["top/etc/passwd"].spans[0].data = []byte("root:x:0:0::/root:/bin/zz\n") // same size, other content
	m.file("top/tmp/dropped", "x")
	img := &Image{Layers: []layers.Layer{{FS: m, Dir: "top", Name: "native/2"}, {FS: m, Dir: "base", Name: "native/1"}}, Writable: true, Copies: true}
	var buf bytes.Buffer
	res, err := Write(&buf, img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, tars := checkArchive(t, buf.Bytes(), res)
	base, top := readLayer(t, tars[0]), readLayer(t, tars[1])
	if _, ok := base["etc/motd"]; !ok || len(base) != 6 {
		t.Errorf("base layer: %v", keys(base))
	}
	got := strings.Join(slices.Sorted(maps.Keys(top)), " ")
	if got != "etc/.wh.motd etc/passwd tmp/ tmp/dropped" {
		t.Errorf("top layer: %s", got)
	}
}
