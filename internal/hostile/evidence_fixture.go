//go:build linux

package hostile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// evidenceCacheVersion names the layout of the cached evidence bases;
// change it when BuildEvidence changes what it makes.
const evidenceCacheVersion = "ev2"

// EvidenceSpecFor returns the bundled example node converted into format
// by the real tools, built once and kept in the test cache directory (as
// testutil.Unzstd keeps decompressed fixtures), so that a seed replays the
// same variants on this machine. It returns nil and the missing tool when
// the tool is not installed.
func EvidenceSpecFor(t testing.TB, format string) (*EvidenceSpec, string) {
	t.Helper()
	if tool := EvidenceToolsMissing(format); tool != "" {
		return nil, tool
	}
	raw := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst"))
	cache := filepath.Join(filepath.Dir(raw), evidenceCacheVersion+"-"+filepath.Base(raw))
	dir := filepath.Join(cache, format)
	if s, err := readSpec(dir); err == nil {
		return s, ""
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, ".partial-"+format+"-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := BuildEvidence(raw, tmp, format)
	if err != nil {
		t.Fatalf("building the %s base: %v", format, err)
	}
	s.Dir = ""
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "spec.json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := readSpec(dir); serr != nil { // not built by another test process meanwhile
			t.Fatal(err)
		}
	}
	s, err = readSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, ""
}

func readSpec(dir string) (*EvidenceSpec, error) {
	j, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, err
	}
	var s EvidenceSpec
	if err := json.Unmarshal(j, &s); err != nil {
		return nil, err
	}
	s.Dir = dir
	return &s, nil
}

// EvidenceBase opens the example node converted into format (see
// EvidenceSpecFor) as a base for a regression test, skipping the test
// when the tool that makes it is missing; it is closed when the test ends.
func EvidenceBase(t testing.TB, format string) *Base {
	t.Helper()
	s, missing := EvidenceSpecFor(t, format)
	if s == nil {
		t.Skipf("%s not installed", missing)
	}
	b, err := OpenEvidenceBase(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
