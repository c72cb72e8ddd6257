package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/export"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A compressed export records the digest and size of the file written and
// of the tar inside it; both are computed off the compressor's goroutine,
// so check them against the file itself.
func TestExportCompressedDigests(t *testing.T) {
	n, err := Open([]string{exampleImage(t)}, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	var plain bytes.Buffer
	pres, err := n.Export(wordpressRef, &plain, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		comp export.Compression
		open func(io.Reader) (io.Reader, error)
	}{
		{"c.tar.gz", export.Gzip, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"c.tar.zst", export.Zstd, func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
	} {
		path := filepath.Join(dir, tc.file)
		res, err := n.ExportFile(wordpressRef, path, ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if res.Compression != string(tc.comp) || res.SHA256 != hex.EncodeToString(sum[:]) || res.Size != int64(len(data)) {
			t.Errorf("%s: recorded %s, sha256 %s, size %d; the file is sha256 %x, %d bytes", tc.file, res.Compression, res.SHA256, res.Size, sum, len(data))
		}
		r, err := tc.open(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		tarData, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		tsum := sha256.Sum256(tarData)
		if res.TarSHA256 != hex.EncodeToString(tsum[:]) || !bytes.Equal(tarData, plain.Bytes()) || res.TarSHA256 != pres.SHA256 {
			t.Errorf("%s: tar sha256 %s, inside it %x; the plain export is %s (equal bytes: %v)", tc.file, res.TarSHA256, tsum, pres.SHA256, bytes.Equal(tarData, plain.Bytes()))
		}
	}
}
