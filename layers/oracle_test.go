//go:build linux

package layers_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
	"github.com/ctrlift/ctrlift/layers"
)

// oracleFixture is the image testdata/images/overlay/make-layers.sh built,
// opened by ctrlift and loop-mounted read-only for the kernel.
type oracleFixture struct {
	img        string
	fsys       *ext4.FS
	mnt        string // the image, mounted read-only
	stacks     map[string]oracleStackDef
	canaryDir  string // host directory symlinks in the image point into
	canary     string // a host file they point to
	canaryData []byte
}

// oracleStackDef is one line of the fixture's index.
type oracleStackDef struct {
	dirs []string // layer dirs in the image, top first
	opts string   // overlay options the kernel needs to read them
}

// options are ctrlift's settings for the kernel's mount options.
func (st oracleStackDef) options() layers.Options {
	return layers.Options{UserXattr: slices.Contains(strings.Split(st.opts, ","), "userxattr")}
}

// TestOverlayOracle compares ctrlift's merge and export with the kernel's
// overlayfs on layers whose whiteouts, opaque directories and copy-ups the
// kernel made itself (see testdata/images/overlay/make-layers.sh).
func TestOverlayOracle(t *testing.T) {
	requireOverlayRoot(t)
	fx := buildOracleFixture(t, nil)
	t.Run("fixture", func(t *testing.T) { checkOracleFixture(t, fx) })
	t.Run("compare-detects", checkDiffTrees)
	// Exact: what ctrlift shows is what the kernel shows.
	for _, name := range []string{"main", "lower", "evasion", "rootopaque", "rootless", "redirect", "metacopy", "metacopy2", "redirect-hidden"} {
		t.Run("merge/"+name, func(t *testing.T) {
			st := fx.stacks[name]
			oracleStack(t, fx, st, overlayRO(t, fx.mnt, st.dirs, st.opts, ""))
		})
	}
	t.Run("merge/many-top-450", func(t *testing.T) {
		st := oracleStackDef{dirs: fx.stacks["many"].dirs[:450]}
		oracleStack(t, fx, st, overlayRO(t, fx.mnt, st.dirs, "", ""))
	})
	t.Run("merge/many-600", func(t *testing.T) {
		// 600 layers are more than one mount takes (500); an overlay of
		// the bottom 300 is the lowest layer of one of the top 300.
		st := fx.stacks["many"]
		inner := overlayRO(t, fx.mnt, st.dirs[300:], "", "")
		oracleStack(t, fx, st, overlayRO(t, fx.mnt, st.dirs[:300], "", inner))
	})
	// Overlay features ctrlift may not implement: it must then say so,
	// never export something else than the kernel shows without a word.
	for _, name := range []string{"xwhiteout"} {
		t.Run("exact-or-refused/"+name, func(t *testing.T) { oracleFeature(t, fx, fx.stacks[name]) })
	}
	t.Run("merge/metacopy-nodata", func(t *testing.T) { oracleMetacopyNoData(t, fx, fx.stacks["metacopy-nodata"]) })
	for _, name := range []string{"main", "evasion", "rootless"} {
		t.Run("changes/chain-"+name, func(t *testing.T) { oracleChangesChain(t, fx, fx.stacks[name]) })
		t.Run("diff/"+name, func(t *testing.T) { oracleDiff(t, fx, fx.stacks[name]) })
	}
	// Metadata-only copy-ups are modified, and say so when the data is
	// the file below at the same path.
	for name, metaOnly := range map[string][]string{
		"redirect":  nil,
		"metacopy":  {"sparse/big", "sparse/fragmented", "sparse/hole", "hard/p"},
		"metacopy2": {"sparse/big", "layer4-moved"},
	} {
		t.Run("diff/"+name, func(t *testing.T) {
			changes := oracleDiff(t, fx, fx.stacks[name])
			got := map[string]bool{}
			for _, c := range changes {
				if c.MetadataOnly {
					got[strings.TrimPrefix(c.Path, "/")] = true
				}
			}
			for _, p := range metaOnly {
				if !got[p] {
					t.Errorf("%s: not reported a metadata-only change", p)
				}
				delete(got, p)
			}
			// Not ren/into-meta/sub/i, a metacopy file under a renamed
			// directory: its path is new, so it is added.
			for p := range got {
				t.Errorf("%s: reported a metadata-only change; want only %q", p, metaOnly)
			}
		})
	}
	t.Run("changes/on-kernel-lower", func(t *testing.T) { oracleChangesOnLower(t, fx) })
	t.Run("symlink-escape", func(t *testing.T) { oracleSymlinkEscape(t, fx) })
}

// TestOverlayOracleExt4Layouts repeats the main comparisons on images
// whose ext4 stores things differently: 1 KiB blocks (deeper extent trees,
// multi-block symlinks and htree), inline data (small files and
// directories in the inode) and EA inodes (xattr values too big for a
// block).
func TestOverlayOracleExt4Layouts(t *testing.T) {
	requireOverlayRoot(t)
	for name, env := range map[string][]string{
		"1k-inline-eainode": {"MKFS_BLOCKSIZE=1024", "MKFS_FEATURES=inline_data,ea_inode"},
	} {
		t.Run(name, func(t *testing.T) {
			fx := buildOracleFixture(t, env)
			for _, name := range []string{"main", "lower"} {
				t.Run("merge/"+name, func(t *testing.T) {
					st := fx.stacks[name]
					oracleStack(t, fx, st, overlayRO(t, fx.mnt, st.dirs, st.opts, ""))
				})
			}
		})
	}
}

// buildOracleFixture runs the fixture script with env added to the
// environment.
func buildOracleFixture(t *testing.T, env []string) *oracleFixture {
	t.Helper()
	fx := &oracleFixture{stacks: map[string]oracleStackDef{}}
	fx.canaryDir = filepath.Join(t.TempDir(), "canary-dir")
	if err := os.MkdirAll(filepath.Join(fx.canaryDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fx.canary = filepath.Join(fx.canaryDir, "canary")
	fx.canaryData = []byte("ctrlift-canary-" + rand.Text() + "\n")
	for _, p := range []string{fx.canary, filepath.Join(fx.canaryDir, "sub", "canary")} {
		if err := os.WriteFile(p, fx.canaryData, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	fx.img = filepath.Join(t.TempDir(), "layers.img")
	script := filepath.Join(testutil.RepoRoot(t), "testdata", "images", "overlay", "make-layers.sh")
	start := time.Now()
	cmd := exec.Command(script, fx.img)
	cmd.Env = append(append(os.Environ(), "CANARY="+fx.canary), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("make-layers.sh: %v", time.Since(start).Round(time.Millisecond))

	idx, err := os.ReadFile(fx.img + ".index.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(idx), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("index line %q", line)
		}
		fx.stacks[f[0]] = oracleStackDef{dirs: strings.Split(f[1], ":"), opts: f[2]}
	}
	if len(fx.stacks["main"].dirs) != 6 || len(fx.stacks["many"].dirs) != 600 {
		t.Fatalf("index: main has %d layers, many %d", len(fx.stacks["main"].dirs), len(fx.stacks["many"].dirs))
	}

	fx.fsys, err = ext4.Open(fx.img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.fsys.Close() })
	fx.mnt = mount(t, "", "ext4", attachLoop(t, fx.img), "ro,noload")
	return fx
}

func (fx *oracleFixture) layers(dirs []string) []layers.Layer {
	ls := make([]layers.Layer, len(dirs))
	for i, d := range dirs {
		ls[i] = layers.Layer{FS: fx.fsys.Source(), Dir: d, Name: filepath.Base(filepath.Dir(d))}
	}
	return ls
}

func (fx *oracleFixture) merge(t *testing.T, st oracleStackDef) *layers.Merged {
	t.Helper()
	m, err := layers.New(fx.layers(st.dirs), st.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) > 0 {
		t.Errorf("warnings: %q", m.Warnings)
	}
	return m
}

func isSocket(_ string, r rec) bool { return r.Type == "socket" }

// exportTar exports m and checks what the export says it left out: only
// sockets, which a tar cannot hold.
func exportTar(t *testing.T, m *layers.Merged, kernel tree) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := export.Tar(&buf, m, export.Options{})
	if err != nil {
		t.Fatalf("export.Tar: %v", err)
	}
	var sockets []string
	for p, r := range kernel {
		if r.Type == "socket" {
			sockets = append(sockets, "/"+p)
		}
	}
	slices.Sort(sockets)
	var skipped []string
	for _, s := range st.Skipped {
		p, _, _ := strings.Cut(s, ":")
		skipped = append(skipped, p)
	}
	slices.Sort(skipped)
	if !slices.Equal(sockets, skipped) {
		t.Errorf("export skipped %q; the kernel shows sockets %q", st.Skipped, sockets)
	}
	return buf.Bytes()
}

// oracleStack compares the kernel's view (a read-only overlay of dirs
// mounted at kernelRoot) with Merged.Walk and with the exported tar, entry
// by entry.
func oracleStack(t *testing.T, fx *oracleFixture, st oracleStackDef, kernelRoot string) {
	start := time.Now()
	kernel := hostTree(t, kernelRoot)
	t.Logf("kernel view: %d entries, %v", len(kernel), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	m := fx.merge(t, st)
	compareTrees(t, "Merged.Walk", kernel, walkTree(t, m))
	t.Logf("Merged.Walk: %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	data := exportTar(t, m, kernel)
	compareTrees(t, "export.Tar", kernel.without(isSocket), tarTree(t, data))
	t.Logf("export.Tar: %d bytes, %v", len(data), time.Since(start).Round(time.Millisecond))
}

// oracleFeature passes when ctrlift shows exactly what the kernel shows,
// or when it refuses (an error wrapping layers.ErrUnsupported) or warns
// (Merged.Warnings) about layers it cannot merge faithfully.
func oracleFeature(t *testing.T, fx *oracleFixture, st oracleStackDef) {
	kernel := hostTree(t, overlayRO(t, fx.mnt, st.dirs, st.opts, ""))
	refused := func(what string, err error) bool {
		if err == nil {
			return false
		}
		if !errors.Is(err, layers.ErrUnsupported) {
			t.Fatalf("%s: %v (an error, but not ErrUnsupported)", what, err)
		}
		t.Logf("refused: %s: %v", what, err)
		return true
	}
	m, err := layers.New(fx.layers(st.dirs), st.options())
	if refused("layers.New", err) {
		return
	}
	got, err := walkTreeErr(m)
	if refused("Merged.Walk", err) {
		return
	}
	var buf bytes.Buffer
	_, tarErr := export.Tar(&buf, m, export.Options{})
	if len(m.Warnings) > 0 {
		t.Logf("warned: %q", m.Warnings)
		return
	}
	compareTrees(t, "Merged.Walk, silently", kernel, got)
	if refused("export.Tar", tarErr) {
		return
	}
	compareTrees(t, "export.Tar, silently", kernel.without(isSocket), tarTree(t, buf.Bytes()))
}

// oracleChangesChain exports every layer of a stack with
// export.Changes, applies them bottom to top with an OCI unpacker (GNU tar
// plus whiteout handling) and compares the result with the kernel's view.
func oracleChangesChain(t *testing.T, fx *oracleFixture, st oracleStackDef) {
	dirs := st.dirs
	kernel := hostTree(t, overlayRO(t, fx.mnt, dirs, st.opts, ""))
	dst := t.TempDir()
	ls := fx.layers(dirs)
	for i := len(ls) - 1; i >= 0; i-- {
		var buf bytes.Buffer
		if _, err := export.Changes(&buf, ls[i], st.options(), export.Options{}); err != nil {
			t.Fatalf("export.Changes(%s): %v", ls[i].Dir, err)
		}
		applyOCILayer(t, dst, buf.Bytes())
	}
	compareTrees(t, "OCI layers from export.Changes, unpacked", kernel.without(isSocket), hostTree(t, dst))
}

// oracleDiff checks layers.Diff of a stack's top layer against the kernel:
// its view of the stack with and without that layer. Names only with the
// layer are added, names only without it deleted; a name in both that the
// kernel shows differently must be modified (directories: mode or owner).
// A name may also be reported modified when the layer holds a copy that
// looks the same (a copy-up without a visible change).
func oracleDiff(t *testing.T, fx *oracleFixture, st oracleStackDef) []layers.Change {
	full := hostTree(t, overlayRO(t, fx.mnt, st.dirs, st.opts, ""))
	below := hostTree(t, overlayRO(t, fx.mnt, st.dirs[1:], st.opts, ""))
	ls := fx.layers(st.dirs)
	lower, err := layers.New(ls[1:], st.options())
	if err != nil {
		t.Fatal(err)
	}
	changes, err := layers.Diff(ls[0], lower, st.options())
	if err != nil {
		t.Fatalf("layers.Diff: %v", err)
	}
	got := map[string]string{}
	var diffs []string
	for _, c := range changes {
		p := strings.TrimPrefix(c.Path, "/")
		if p == "" {
			p = "."
		}
		if prev, dup := got[p]; dup {
			t.Errorf("%s reported twice (%s, %s)", c.Path, prev, c.Kind)
		}
		got[p] = c.Kind.String()
		// Metadata only: the kernel shows the same contents before and after.
		if f, b := full[p], below[p]; c.MetadataOnly && (c.Kind != layers.Modified || f.Type != "file" || b.Type != "file" || f.SHA256 != b.SHA256 || f.Size != b.Size) {
			diffs = append(diffs, fmt.Sprintf("%q: Diff says %s, metadata only, kernel views say %s -> %s", p, c.Kind, b, f))
		}
	}
	check := func(p, want string, must bool) {
		g := got[p]
		switch {
		case g == want:
		case !must && g == "":
		default:
			diffs = append(diffs, fmt.Sprintf("%q: Diff says %q, kernel views say %q (%s -> %s)", p, g, want, below[p], full[p]))
		}
	}
	for p, f := range full {
		b, ok := below[p]
		switch {
		case !ok:
			check(p, "added", true)
		case f.Type == "dir" && b.Type == "dir":
			check(p, "modified", f.Mode != b.Mode || f.UID != b.UID || f.GID != b.GID)
		default:
			f.Link, b.Link = "", ""
			if f.String() != b.String() {
				check(p, "modified", true)
			} else if _, err := fx.fsys.Lookup(st.dirs[0] + "/" + p); err == nil {
				check(p, "modified", false)
			} else {
				check(p, "", true)
			}
		}
	}
	for p := range below {
		if _, ok := full[p]; !ok {
			check(p, "deleted", true)
		}
	}
	for p, k := range got {
		if _, ok := full[p]; !ok {
			if _, ok := below[p]; !ok {
				diffs = append(diffs, fmt.Sprintf("%q: Diff says %q, but neither kernel view has it", p, k))
			}
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("... and %d more", len(diffs)-40))
		}
		t.Errorf("layers.Diff: %d differences from the kernel:\n  %s", len(diffs), strings.Join(diffs, "\n  "))
	}
	t.Logf("%d changes", len(changes))
	return changes
}

// oracleMetacopyNoData merges metacopy files whose data a layer in between
// deleted. The kernel fails their lookup (EIO); ctrlift keeps them, with
// their metadata, no data and Entry.DataMissing, names each in
// Merged.Warnings and exports them as empty files, and shows everything
// else exactly as the kernel does.
func oracleMetacopyNoData(t *testing.T, fx *oracleFixture, st oracleStackDef) {
	kernel := hostTreeEIO(t, overlayRO(t, fx.mnt, st.dirs, st.opts, ""), true)
	m, err := layers.New(fx.layers(st.dirs), st.options())
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	err = m.Walk(func(p string, e *layers.Entry) error {
		if e.DataMissing {
			if !e.Metacopy || e.Size != 0 {
				t.Errorf("%s: DataMissing, Metacopy %v, size %d", p, e.Metacopy, e.Size)
			}
			missing = append(missing, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var eio []string
	for p, r := range kernel {
		if r.Type == "eio" {
			eio = append(eio, p)
		}
	}
	slices.Sort(eio)
	if want := []string{"layer4-moved", "ren/into-meta/sub/i", "sparse/big", "sparse/big-link"}; !slices.Equal(eio, want) || !slices.Equal(missing, want) {
		t.Errorf("kernel EIO on %q, ctrlift's DataMissing %q; want both %q", eio, missing, want)
	}
	if len(m.Warnings) != len(missing) {
		t.Errorf("warnings %q; want one per missing data %q", m.Warnings, missing)
	}
	for _, p := range missing {
		if !slices.ContainsFunc(m.Warnings, func(w string) bool { return strings.HasPrefix(w, "/"+p+": ") }) {
			t.Errorf("no warning names /%s: %q", p, m.Warnings)
		}
	}
	asEIO := func(tr tree) tree {
		for _, p := range missing {
			if r := tr[p]; r.Type != "file" || r.Size != 0 {
				t.Errorf("%s: %v, want an empty file", p, r)
			}
			tr[p] = rec{Type: "eio"}
		}
		return tr
	}
	compareTrees(t, "Merged.Walk", kernel, asEIO(walkTree(t, m)))
	var buf bytes.Buffer
	if _, err := export.Tar(&buf, m, export.Options{}); err != nil {
		t.Fatalf("export.Tar: %v", err)
	}
	compareTrees(t, "export.Tar", kernel.without(isSocket), asEIO(tarTree(t, buf.Bytes())))
}

// oracleChangesOnLower copies the kernel's view of the image (the lower
// layers) and applies export.Changes of the container's writable layer on
// top, as `docker export`-style tooling would use --changes.
func oracleChangesOnLower(t *testing.T, fx *oracleFixture) {
	dirs := fx.stacks["main"].dirs
	kernel := hostTree(t, overlayRO(t, fx.mnt, dirs, "", ""))
	lower := overlayRO(t, fx.mnt, dirs[1:], "", "")
	dst := t.TempDir()
	run(t, "", "cp", "-a", lower+"/.", dst+"/")
	var buf bytes.Buffer
	if _, err := export.Changes(&buf, fx.layers(dirs[:1])[0], layers.Options{}, export.Options{}); err != nil {
		t.Fatalf("export.Changes: %v", err)
	}
	applyOCILayer(t, dst, buf.Bytes())
	// Sockets: the image's are copied by cp, the container's cannot be in
	// a tar.
	upperSockets := func(p string, r rec) bool {
		if r.Type != "socket" {
			return false
		}
		_, err := fx.fsys.Lookup(dirs[0] + "/" + p)
		return err == nil
	}
	compareTrees(t, "image copy + export.Changes of the writable layer", kernel.without(upperSockets), hostTree(t, dst))
}

// oracleSymlinkEscape checks that symlinks pointing out of the image
// (absolute, ../-escaping, to a host canary file) are exported as links
// with their exact targets and never followed: an inotify watch on the
// canary sees no open while ctrlift merges, walks and exports.
func oracleSymlinkEscape(t *testing.T, fx *oracleFixture) {
	ino, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	for _, p := range []string{fx.canaryDir, fx.canary, filepath.Join(fx.canaryDir, "sub")} {
		if _, err := unix.InotifyAddWatch(ino, p, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
			t.Fatal(err)
		}
	}

	dirs := fx.stacks["main"].dirs
	m := fx.merge(t, fx.stacks["main"])
	var tarBuf, changesBuf bytes.Buffer
	if _, err := export.Tar(&tarBuf, m, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Changes(&changesBuf, fx.layers(dirs[:1])[0], layers.Options{}, export.Options{}); err != nil {
		t.Fatal(err)
	}
	_ = walkTree(t, m)

	// Symlinks are entries, never resolved.
	for _, p := range []string{"links/canary-abs", "links/canary-rel", "tmp/.canary", "links/abs-shadow", "links/up-passwd"} {
		if b, err := fs.ReadFile(m, p); err == nil {
			t.Errorf("Merged: reading symlink %s gave %d bytes %q; want an error", p, len(b), b)
		}
		if b, err := fs.ReadFile(fx.fsys, dirs[5]+"/"+p); err == nil && bytes.Equal(b, fx.canaryData) {
			t.Errorf("ext4: reading %s gave the host canary", p)
		}
	}
	for _, p := range []string{"links/canary-dir/canary", "links/root/etc/passwd", "links/up-root/etc/passwd", "links/dir-link/doc"} {
		if _, err := m.Lookup(p); err == nil {
			t.Errorf("Merged.Lookup(%q) went through a symlink", p)
		}
		if _, err := fs.ReadDir(m, p); err == nil {
			t.Errorf("fs.ReadDir(%q) went through a symlink", p)
		}
	}
	// Layer directories that are symlinks to the host are refused.
	for _, d := range []string{"escape/fs", "escape/parent/sub", "escape/parent"} {
		if _, err := layers.New([]layers.Layer{{FS: fx.fsys.Source(), Dir: d, Name: "escape"}}, layers.Options{}); err == nil {
			t.Errorf("layers.New accepted layer dir %q, a symlink out of the image", d)
		}
		if _, err := layers.New([]layers.Layer{{FS: fx.fsys.Source(), Dir: d, Name: "escape"}}, layers.Options{AllowMissing: true}); err == nil {
			t.Errorf("layers.New (AllowMissing) accepted layer dir %q, a symlink out of the image", d)
		}
	}

	// Nothing of the host is in the exports.
	hostSecrets := [][]byte{fx.canaryData}
	for _, p := range []string{"/etc/shadow", "/etc/passwd"} {
		if b, err := os.ReadFile(p); err == nil && len(b) >= 16 {
			hostSecrets = append(hostSecrets, b)
		}
	}
	for name, data := range map[string][]byte{"export.Tar": tarBuf.Bytes(), "export.Changes": changesBuf.Bytes()} {
		for _, s := range hostSecrets {
			if bytes.Contains(data, s) {
				t.Errorf("%s contains host file content %.40q", name, s)
			}
		}
	}
	events := make([]byte, 4096)
	if n, err := unix.Read(ino, events); n > 0 {
		t.Errorf("the host canary was opened or read while ctrlift worked (%d bytes of inotify events)", n)
	} else if !errors.Is(err, unix.EAGAIN) {
		t.Errorf("reading inotify events: %v", err)
	}

	// The links themselves are exported byte-exact.
	want := map[string]string{
		"links/abs-shadow": "/etc/shadow",
		"links/abs-passwd": "/etc/passwd",
		"links/up-passwd":  "../../../../etc/passwd",
		"links/up-root":    strings.Repeat("../", 12) + "..",
		"links/root":       "/",
		"links/canary-abs": fx.canary,
		"links/canary-rel": strings.Repeat("../", 40) + strings.TrimPrefix(fx.canary, "/"),
		"links/canary-dir": fx.canaryDir,
		"links/nonutf8":    "\xff\xfe/\x80",
		"links/spaced":     " spaced target ",
		"links/max":        strings.Repeat("abcdefghi/", 409) + "end",
		"etc/alt-passwd":   "/etc/passwd",
		"tmp/.s":           "/etc/shadow",
		"tmp/.canary":      fx.canary,
		"tmp/.up":          "../../../../../../etc/shadow",
	}
	got := tarTree(t, tarBuf.Bytes())
	for p, target := range want {
		r, ok := got[p]
		if !ok || r.Type != "symlink" || r.Target != target {
			t.Errorf("%s: exported as %v, want symlink to %q", p, r, target)
		}
	}
	changes := tarTree(t, changesBuf.Bytes())
	for _, p := range []string{"tmp/.s", "tmp/.canary", "tmp/.up"} {
		if r := changes[p]; r.Type != "symlink" || r.Target != want[p] {
			t.Errorf("changes: %s: exported as %v, want symlink to %q", p, r, want[p])
		}
	}
	// Sanity: the watch does see an open.
	if f, err := os.Open(fx.canary); err == nil {
		f.Close()
	}
	if n, _ := unix.Read(ino, events); n <= 0 {
		t.Error("inotify saw no event for an open of the canary: the check above proves nothing")
	}
}

// checkOracleFixture makes sure the kernel built what the comparisons rely
// on, looking at the layer directories through the kernel's ext4 mount.
func checkOracleFixture(t *testing.T, fx *oracleFixture) {
	type counts struct{ whiteouts, opaque, origin, redirect, metacopy, userOverlay int }
	count := func(dir string) counts {
		var c counts
		root := filepath.Join(fx.mnt, dir)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				c.whiteouts++
			}
			xs, err := rawXattrs(p)
			if err != nil {
				return err
			}
			if string(xs["trusted.overlay.opaque"]) == "y" {
				c.opaque++
			}
			for k := range xs {
				switch {
				case k == "trusted.overlay.origin":
					c.origin++
				case k == "trusted.overlay.redirect":
					c.redirect++
				case k == "trusted.overlay.metacopy":
					c.metacopy++
				case strings.HasPrefix(k, "user.overlay."):
					c.userOverlay++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var main counts
	for _, d := range fx.stacks["main"].dirs[:5] {
		c := count(d)
		main.whiteouts += c.whiteouts
		main.opaque += c.opaque
		main.origin += c.origin
	}
	if main.whiteouts < 1100 || main.opaque < 3 || main.origin < 20 {
		t.Errorf("main stack: %d whiteouts, %d opaque dirs, %d copy-ups with origin; the kernel did not make what the script asked for", main.whiteouts, main.opaque, main.origin)
	}
	if c := count(fx.stacks["evasion"].dirs[0]); c.userOverlay != 3 {
		t.Errorf("evasion layer: %d user.overlay.* xattrs, want 3", c.userOverlay)
	}
	if c := count(fx.stacks["rootless"].dirs[0]); c.userOverlay < 3 || c.whiteouts != 2 {
		t.Errorf("rootless layer: %d user.overlay.* xattrs, %d whiteouts; want the kernel's userxattr markers", c.userOverlay, c.whiteouts)
	}
	if c := count(fx.stacks["redirect"].dirs[0]); c.redirect < 7 {
		t.Errorf("redirect layer: %d trusted.overlay.redirect, want 7", c.redirect)
	}
	if c := count(fx.stacks["metacopy"].dirs[0]); c.metacopy < 8 {
		t.Errorf("metacopy layer: %d trusted.overlay.metacopy, want 8", c.metacopy)
	}
	// The redirects and metacopy files the comparisons rely on, as the
	// kernel wrote them ("-": no such xattr).
	for layer, want := range map[string]map[string][2]string{
		"redirect": {
			"ren/a2": {"a", "-"}, "ren/a2/b2": {"b", "-"}, "ren/c-out": {"/ren/a/b/c", "-"},
			"ren/gone": {"src", "-"}, "ren/newparent/into": {"/ren/into", "-"},
		},
		"metacopy": {
			"sparse/big": {"/sparse/big", ""}, "sparse/big-link": {"/sparse/big", ""}, "hard/p": {"-", ""},
			"layer4-moved": {"layer4-only", ""}, "ren/layer2-moved": {"/layer2-only", ""},
			"ren/meta-file": {"-", "-"}, "ren/into-meta": {"into", "-"},
		},
		"metacopy2": {
			"sparse/big": {"-", ""}, "layer4-moved": {"-", ""},
			"layer2-again": {"/ren/layer2-moved", ""}, "into-twice": {"/ren/into-meta", "-"},
		},
	} {
		for p, w := range want {
			xs, err := rawXattrs(filepath.Join(fx.mnt, fx.stacks[layer].dirs[0], p))
			if err != nil {
				t.Fatal(err)
			}
			got := [2]string{"-", "-"}
			for i, x := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"} {
				if v, ok := xs[x]; ok {
					got[i] = string(v)
				}
			}
			if got != w {
				t.Errorf("%s layer: %s: redirect, metacopy %q; want %q", layer, p, got, w)
			}
		}
	}
	t.Logf("main stack layers: %+v", main)

	kernel := hostTree(t, overlayRO(t, fx.mnt, fx.stacks["main"].dirs, "", ""))
	for p, typ := range map[string]string{
		"usr/share/doc/NOTE": "file", "etc/hostname": "dir", "etc/hostname/file": "file",
		"f2d": "dir", "d2f": "symlink", "victim/v2": "file", "dev/sock": "socket", "dev/sock6": "socket",
		"usr/share/doc/pkg2": "", "hard/b": "", "hard/x": "", "layer3-only": "", "victim/v": "", "big/f1500": "",
		"rename/old": "", "rename/dir": "", "opaque-me/one": "", "layer5-only": "",
	} {
		if got := kernel[p].Type; got != typ {
			t.Errorf("kernel view: %s is %q, want %q", p, got, typ)
		}
	}
	if a, b := kernel["hard/a"].Link, kernel["hard/a-upper"].Link; a == "" || a != b {
		t.Errorf("kernel view: hard/a and hard/a-upper are not one inode (%q, %q)", a, b)
	}
}

// checkDiffTrees proves the comparison can fail: each field a reader could
// get wrong is noticed.
func checkDiffTrees(t *testing.T) {
	base := rec{Type: "file", Mode: 0o4755, UID: 1, GID: 2, Size: 3, SHA256: "ab", MtimeNs: 5,
		Xattrs: map[string]string{"user.a": `"b"`}, Link: "x"}
	for name, mut := range map[string]func(*rec){
		"type": func(r *rec) { r.Type = "fifo" }, "mode": func(r *rec) { r.Mode = 0o755 },
		"uid": func(r *rec) { r.UID = 0 }, "gid": func(r *rec) { r.GID = 0 }, "size": func(r *rec) { r.Size = 4 },
		"sha": func(r *rec) { r.SHA256 = "cd" }, "mtime": func(r *rec) { r.MtimeNs = 6 },
		"xattr": func(r *rec) { r.Xattrs = map[string]string{"user.a": `"c"`} }, "no-xattr": func(r *rec) { r.Xattrs = nil },
		"link": func(r *rec) { r.Link = "" },
	} {
		r := base
		mut(&r)
		if d := diffTrees(tree{"x": base}, tree{"x": r}); len(d) != 1 {
			t.Errorf("%s: a changed %s gives %d differences", name, name, len(d))
		}
	}
	sym := rec{Type: "symlink", Mode: 0o777, Target: "/a"}
	sym2 := sym
	sym2.Target = "/a/"
	dev := rec{Type: "char", Rdev: "1:3"}
	dev2 := dev
	dev2.Rdev = "1:5"
	for _, c := range [][2]tree{
		{{"s": sym}, {"s": sym2}}, {{"d": dev}, {"d": dev2}},
		{{"a": base}, {}}, {{}, {"a": base}},
	} {
		if d := diffTrees(c[0], c[1]); len(d) != 1 {
			t.Errorf("%v vs %v: %d differences", c[0], c[1], len(d))
		}
	}
}
