package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// TestCOSNodeManifests exports every container of the cos-node fixture
// (clean and live copies) and compares each entry with the manifest made
// from a real read-only overlay mount.
func TestCOSNodeManifests(t *testing.T) {
	shared := testutil.Shared(t)
	base := filepath.Join(shared, "fixtures", "cos-node")
	for _, c := range []struct{ image, manifests string }{
		{"cos-node.raw.zst", "manifests"},
		{"cos-node-live.raw.zst", "manifests-live"},
	} {
		t.Run(c.manifests, func(t *testing.T) {
			fsys := testutil.COSNodeSTATE(t, c.image)
			for _, row := range testutil.ReadIndex(t, filepath.Join(base, c.manifests, "index.tsv")) {
				t.Run(row.NS+"/"+row.Container, func(t *testing.T) {
					var ls []layers.Layer
					for i, d := range row.Layers {
						ls = append(ls, layers.Layer{FS: fsys.Source(), Dir: strings.TrimPrefix(d, "/"), Name: fmt.Sprint(i)})
					}
					m, err := layers.New(ls, layers.Options{})
					if err != nil {
						t.Fatal(err)
					}
					var buf, buf2 bytes.Buffer
					st, err := Tar(&buf, m, Options{})
					if err != nil {
						t.Fatal(err)
					}
					want := testutil.ReadManifest(t, filepath.Join(base, c.manifests, row.Manifest))
					testutil.CompareManifests(t, row.Container, want, testutil.TarToManifest(t, buf.Bytes()))
					// A second export is byte-identical.
					if _, err := Tar(&buf2, m, Options{}); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
						t.Error("two exports differ")
					}
					sum := sha256.Sum256(buf.Bytes())
					if st.TarSHA256 != hex.EncodeToString(sum[:]) {
						t.Errorf("reported sha256 %s, tar hashes to %x", st.TarSHA256, sum)
					}
				})
			}
		})
	}
}
