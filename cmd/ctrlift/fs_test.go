package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

const cosState = 4456448000 // byte offset of STATE in the cos-node disk (expected/gpt.txt)

// TestFSCatMatchesDebugfs compares ctrlift's bytes with e2fsprogs' own
// reader, the independent oracle that needs no mount.
func TestFSCatMatchesDebugfs(t *testing.T) {
	img := cosImage(t)
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs not installed")
	}
	raw := testutil.Unzstd(t, img)
	for _, p := range []string{
		"/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
		"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db",
	} {
		out, errOut, err := run(t, "fs", "cat", "-i", img, p)
		if err != nil {
			t.Fatal(err, errOut)
		}
		dump := filepath.Join(t.TempDir(), "dump")
		cmd := exec.Command("debugfs", "-R", "dump "+p+" "+dump, raw+"?offset="+strconv.FormatInt(cosState, 10))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, b)
		}
		want, err := os.ReadFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || sha(want) != sha([]byte(out)) {
			t.Errorf("%s: ctrlift gives %d bytes sha256 %s, debugfs %d bytes %s", p, len(out), sha([]byte(out)), len(want), sha(want))
		}
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFSLsFindsListing: every path of the fixture's own listing of the
// STATE partition (made on a kernel mount) is listed by ls -R.
func TestFSLsFindsListing(t *testing.T) {
	img := cosImage(t)
	listing, err := os.ReadFile(testutil.SharedFile(t, "fixtures/cos-node/expected/stateful-partition-listing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, "fs", "ls", "-R", "-i", img, "/")
	if err != nil {
		t.Fatal(err, errOut)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[l] = true
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		// "<type> <mode> <rdev> <size> ./path"
		i := strings.Index(l, " ./")
		if i < 0 {
			continue
		}
		p := "/" + l[i+3:]
		if p == "/" || p == "/." {
			continue
		}
		n++
		if !have[p] {
			t.Errorf("listed on the kernel mount but not by ctrlift: %q", p)
		}
	}
	if n < 9000 {
		t.Fatalf("only %d paths parsed from the listing", n)
	}
}

func TestFSStatJSON(t *testing.T) {
	img := cosImage(t)
	out, errOut, err := run(t, "fs", "stat", "-o", "json", "-i", img,
		"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs/var/lib/app/cache")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var st export.Record
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "dir" || st.Mode != "0755" || st.CrtimeNs == nil || len(st.Xattrs) != 1 ||
		st.Xattrs["trusted.overlay.opaque"] != "eQ==" {
		t.Errorf("unexpected stat: %s", out)
	}
}
