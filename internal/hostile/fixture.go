package hostile

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// FixtureBase opens a zstd-compressed fixture, named by its path from the
// repository root, as a Base of the given kind for a regression test; it
// is closed when the test ends.
func FixtureBase(t testing.TB, rel, kind string) *Base {
	t.Helper()
	img := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), filepath.FromSlash(rel)))
	name, _, _ := strings.Cut(filepath.Base(rel), ".")
	b, err := OpenBase(name, kind, img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// WriteTemp writes the variant's image into the test's temporary directory
// and returns its path (for a multi-file base, the path of the file named
// by -i, in a directory holding the set).
func (v *Variant) WriteTemp(t testing.TB) string {
	t.Helper()
	if v.Base.Set != nil {
		p, err := v.WriteDir(filepath.Join(t.TempDir(), v.Class), "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := filepath.Join(t.TempDir(), v.Class+".img")
	if err := v.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}
