package tarfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestProbe: what is a tar of a tree, what is a GCE export, what is not a
// tar at all; a tar whose first header does not read is still a tar (the
// sweep's variant #779 went down the disk path and wrote a cache).
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, pax bool) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		h := &tar.Header{Name: name, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if pax {
			h.Format, h.PAXRecords = tar.FormatPAX, map[string]string{"SCHILY.xattr.user.x": "y"}
		}
		tw.WriteHeader(h)
		tw.Write([]byte("hi"))
		tw.Close()
		return b.Bytes()
	}
	zst := func(b []byte) []byte {
		var out bytes.Buffer
		zw, _ := zstd.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	broken := mk("a.txt", true)
	copy(broken[512:], "5 ") // the PAX header's first record lies about its length
	for _, tt := range []struct {
		name  string
		data  []byte
		isTar bool
		first string
	}{
		{"tree.tar", mk("var/lib/containerd/meta.db", false), true, "var/lib/containerd/meta.db"},
		{"gce.tar.zst", zst(mk("disk.raw", false)), true, "disk.raw"},
		{"disk.raw.zst", zst(make([]byte, 4096)), false, ""},
		{"disk.raw", make([]byte, 4096), false, ""},
		{"broken.tar", broken, true, ""},
	} {
		p := filepath.Join(dir, tt.name)
		os.WriteFile(p, tt.data, 0o644)
		isTar, first, err := Probe(p)
		if err != nil || isTar != tt.isTar || first != tt.first {
			t.Errorf("%s: Probe = %v %q %v, want %v %q", tt.name, isTar, first, err, tt.isTar, tt.first)
		}
	}
}
