//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// ctrliftBinary builds ctrlift once per test binary into a directory
// every user can read, for runs as another user.
func ctrliftBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ctrlift-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		builtBin = filepath.Join(dir, "ctrlift")
		out, err := exec.Command("go", "build", "-buildvcs=true", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			// Outside a checkout (or without git) there is no VCS stamp.
			out, err = exec.Command("go", "build", "-buildvcs=false", "-o", builtBin, ".").CombinedOutput()
		}
		if err != nil {
			buildErr = &exec.ExitError{Stderr: out}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

// scratch is a directory every user may write in (the unprivileged runs
// need it), removed after the test.
func scratch(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctrlift-outputs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

type runner struct {
	bin   string
	dir   string // working directory
	cache string // XDG_CACHE_HOME
	uid   int    // -1: this process's user
}

func (r runner) run(t *testing.T, stdout *os.File, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "XDG_CACHE_HOME=" + r.cache, "TMPDIR=" + r.dir}
	if r.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.uid), NoSetGroups: true}}
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	return errOut.String(), err
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// TestExportNeverWritesInput points every output of export at the evidence
// under every name it has: the input itself, a symlink, a hardlink, the
// decompressed cache copy, and stdout appended to it; with and without
// --force; raw and zstd input of mode 0444; as root and as nobody. Every
// run must fail before writing, and the evidence keep its bytes and inode.
func TestExportNeverWritesInput(t *testing.T) {
	bin := ctrliftBinary(t)
	root := testutil.RepoRoot(t)
	zst := filepath.Join(root, "testdata/images/disk/bare-ext4.raw.zst")
	users := []int{-1}
	if os.Geteuid() == 0 {
		users = append(users, 65534) // nobody
	} else {
		t.Log("not root: the unprivileged runs are this user's")
	}
	for _, uid := range users {
		for _, kind := range []string{"raw", "zst"} {
			name := kind + "/root"
			if uid >= 0 {
				name = kind + "/nobody"
			}
			t.Run(name, func(t *testing.T) {
				dir := scratch(t)
				in := filepath.Join(dir, "evidence."+kind)
				src := zst
				if kind == "raw" {
					src = testutil.Unzstd(t, zst)
				}
				data, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(in, data, 0o444); err != nil {
					t.Fatal(err)
				}
				os.Chmod(in, 0o444)
				if err := os.Symlink("evidence."+kind, filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(in, filepath.Join(dir, "hard")); err != nil {
					t.Fatal(err)
				}
				cache := filepath.Join(dir, "cache")
				os.Mkdir(cache, 0o777)
				os.Chmod(cache, 0o777)
				r := runner{bin: bin, dir: dir, cache: cache, uid: uid}
				// A good export first: it also makes the cache copy.
				if errOut, err := r.run(t, nil, "export", "-q", "-i", in, "--layer-dirs", ".", "ok.tar"); err != nil {
					t.Fatalf("export: %v\n%s", err, errOut)
				}
				sum := fileSum(t, in)
				before, _ := os.Stat(in)
				targets := [][]string{
					{in}, {"evidence." + kind}, {"./link"}, {"hard"},
					{"x.tar", "--manifest", in}, {"x.tar", "--manifest", "hard"},
				}
				if kind == "zst" {
					copies, _ := filepath.Glob(filepath.Join(cache, "ctrlift", "*.raw"))
					if len(copies) != 1 {
						t.Fatalf("cache holds %v", copies)
					}
					targets = append(targets, []string{copies[0]}, []string{filepath.Join(cache, "ctrlift", "new.tar")})
				}
				for _, tgt := range targets {
					for _, force := range []bool{false, true} {
						args := append([]string{"export", "-i", in, "--layer-dirs", "."}, tgt...)
						if force {
							args = append(args, "--force")
						}
						errOut, err := r.run(t, nil, args...)
						if err == nil || !strings.Contains(errOut, "ctrlift: refusing to write") {
							t.Errorf("%v: err %v, stderr %q", args, err, errOut)
						}
					}
				}
				// Also through the symlink as the input's name.
				if errOut, err := r.run(t, nil, "export", "-i", "link", "--layer-dirs", ".", "hard", "--force"); err == nil {
					t.Errorf("-i link -o hard: %s", errOut)
				}
				// Standard output appended to the evidence (`>> evidence`):
				// only root can open it for writing at all.
				if uid < 0 && os.Geteuid() == 0 {
					f, err := os.OpenFile(in, os.O_WRONLY|os.O_APPEND, 0)
					if err != nil {
						t.Fatal(err)
					}
					errOut, err := r.run(t, f, "export", "-i", in, "--layer-dirs", ".", "-")
					f.Close()
					if err == nil || !strings.Contains(errOut, "refusing to write to standard output") {
						t.Errorf(">> evidence: err %v, stderr %q", err, errOut)
					}
				}
				after, _ := os.Stat(in)
				if fileSum(t, in) != sum || !os.SameFile(before, after) || after.Size() != int64(len(data)) || after.Mode().Perm() != 0o444 {
					t.Errorf("the evidence changed: %v %v", before, after)
				}
				if hard, _ := os.Stat(filepath.Join(dir, "hard")); !os.SameFile(hard, after) {
					t.Error("the hardlink no longer names the evidence")
				}
				if got := listDir(t, dir); got != "cache evidence."+kind+" hard link ok.tar" {
					t.Errorf("directory holds %s", got)
				}
			})
		}
	}
}

// TestExportOutputRules: existing outputs are kept unless --force, two
// outputs naming one file are refused, a failed export leaves nothing,
// and /dev/null and FIFOs are written as they are.
func TestExportOutputRules(t *testing.T) {
	bin := ctrliftBinary(t)
	in := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "testdata/images/disk/bare-ext4.raw.zst"))
	dir := scratch(t)
	r := runner{bin: bin, dir: dir, cache: dir, uid: -1}
	export := func(args ...string) (string, error) {
		return r.run(t, nil, append([]string{"export", "-q", "-i", in, "--layer-dirs", "."}, args...)...)
	}
	if errOut, err := export("a.tar", "--manifest", "a.jsonl"); err != nil {
		t.Fatal(err, errOut)
	}
	want := fileSum(t, filepath.Join(dir, "a.tar"))
	os.WriteFile(filepath.Join(dir, "b.tar"), []byte("keep me"), 0o644)
	if errOut, err := export("b.tar"); err == nil || !strings.Contains(errOut, "b.tar exists: not replaced unless forced (--force replaces it)") {
		t.Errorf("existing output: %v %q", err, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.tar")); string(b) != "keep me" {
		t.Error("an existing output was overwritten without --force")
	}
	if errOut, err := export("b.tar", "--force"); err != nil || fileSum(t, filepath.Join(dir, "b.tar")) != want {
		t.Errorf("--force: %v %q", err, errOut)
	}
	for _, args := range [][]string{
		{"c.tar", "--manifest", "c.tar"},
		{"c.tar", "--manifest", "./c.tar"},
		{"c.tar", "--manifest", filepath.Join(dir, "c.tar")},
	} {
		if errOut, err := export(args...); err == nil || !strings.Contains(errOut, "name the same file") {
			t.Errorf("%v: %v %q", args, err, errOut)
		}
	}
	// A failed export leaves no output and no temporary file.
	if _, err := export("d.tar", "--manifest", "d.jsonl", "--layer-dirs", "nope"); err == nil {
		t.Error("export of a missing layer directory succeeded")
	}
	if got := listDir(t, dir); got != "a.jsonl a.tar b.tar" {
		t.Errorf("after a failed export the directory holds %s", got)
	}
	// Non-regular targets are written in place, without --force.
	if errOut, err := export(os.DevNull); err != nil {
		t.Errorf("-o /dev/null: %v %q", err, errOut)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		got <- hex.EncodeToString(h.Sum(nil))
	}()
	if errOut, err := export(fifo, "--compress", "none"); err != nil {
		t.Errorf("-o FIFO: %v %q", err, errOut)
	}
	if s := <-got; s != want {
		t.Errorf("FIFO got a tar with sha256 %s, want %s", s, want)
	}
}

// TestVersion: --version names the VCS revision of the build.
func TestVersion(t *testing.T) {
	bin := ctrliftBinary(t)
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	rev := strings.TrimSpace(string(head))
	if !strings.HasPrefix(string(out), "ctrlift ") || !strings.Contains(string(out), "revision "+rev) {
		t.Errorf("--version printed %q, want revision %s", out, rev)
	}
}
