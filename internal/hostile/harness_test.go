//go:build linux

package hostile

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// The harness checks itself: a fake ctrlift (this test binary, told what
// to do by HOSTILE_FAKE) misbehaves in each way the sweep must catch, and
// each must get its outcome. A sweep that cannot fail would prove nothing.

func TestMain(m *testing.M) {
	if mode := os.Getenv("HOSTILE_FAKE"); mode != "" {
		fake(mode, os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

// fake behaves like a broken ctrlift.
func fake(mode string, args []string) {
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	img, out := flag("-i"), ""
	if len(args) > 0 && args[0] == "export" && flag("-d") == "" {
		out = args[len(args)-1] // export REF [FILE|-]: the destination comes last
	}
	switch mode {
	case "ok":
		if len(args) > 0 && args[0] == "list" {
			fmt.Println("[]")
		}
		if len(args) > 0 && args[0] == "export" {
			if out == "-" {
				os.Stdout.Write(make([]byte, 1024)) // an empty tar
			} else {
				os.WriteFile(out, make([]byte, 1024), 0o644)
			}
		}
	case "error":
		fmt.Fprintln(os.Stderr, "ctrlift: warning: something odd")
		fmt.Fprintln(os.Stderr, "ctrlift: ext4: inode 12 at byte 4096: bad rec_len 3")
		os.Exit(1)
	case "detail":
		fmt.Fprintln(os.Stderr, "ctrlift: \"web\" matches 2 containers:\n  k8s.io/a\n  k8s.io/b")
		os.Exit(1)
	case "multiline":
		fmt.Fprintln(os.Stderr, "ctrlift: reading\nsomething went wrong")
		os.Exit(1)
	case "ctlchar":
		fmt.Fprintln(os.Stderr, "ctrlift: layers: etc/\x1b[2Jname: ext4: inode 5 at byte 7: bad")
		os.Exit(1)
	case "noprefix":
		fmt.Fprintln(os.Stderr, "Error: something went wrong")
		os.Exit(1)
	case "panic":
		var m map[string]int
		m["x"] = 1
	case "hang":
		time.Sleep(time.Minute)
	case "alloc":
		if len(args) == 0 || args[0] != "partitions" {
			return // once is enough, and slow on a loaded machine
		}
		b := make([]byte, 600<<20)
		for i := range b {
			b[i] = 1
		}
		fmt.Println(len(b))
	case "exit3":
		os.Exit(3)
	case "signal":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "writenext":
		os.WriteFile(img+".cache", []byte("x"), 0o644)
	case "writecwd":
		os.WriteFile("stray", []byte("x"), 0o644)
	case "writetmp":
		f, _ := os.CreateTemp("", "left-behind-*")
		f.Close()
	case "modify":
		if f, err := os.OpenFile(img, os.O_WRONLY, 0); err == nil {
			f.WriteAt([]byte{0xFF}, 1024)
			f.Close()
		}
	case "badtar":
		if len(args) == 0 || args[0] != "export" {
			return
		}
		if out == "-" {
			fmt.Print("this is not a tar archive, it is far too short and wrong\n")
		} else if out != "" {
			os.WriteFile(out, []byte("garbage"), 0o644)
		}
	case "flood":
		if len(args) == 0 || args[0] != "export" {
			return
		}
		data := make([]byte, 8<<20)
		if out == "-" {
			os.Stdout.Write(data)
			return
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "ctrlift: export: /sparse/big: %v\n", err)
			os.Exit(1)
		}
	case "escape", "peek":
		// Read a file outside the evidence directory (the worker's
		// escape targets are ../outside from a one-file image).
		b, err := os.ReadFile(filepath.Join(filepath.Dir(img), "..", "outside", "canary"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "ctrlift: fake: inode 1:", err)
			os.Exit(1)
		}
		if mode == "escape" {
			fmt.Printf("%s\n", b)
		}
	case "runaway":
		fmt.Fprintln(os.Stderr, "ctrlift: export: /sparse/big: write /out/fs.tar: file too large")
		os.Exit(1)
	}
}

func TestHarnessCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs helpers")
	}
	dir := scratch(t)
	_, limiter := build(t, dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fake-ctrlift")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	img := testutil.Unzstd(t, filepath.Join(testutil.RepoRoot(t), "image", "ext4", "testdata", "tiny.img.zst"))
	b, err := OpenBase("tiny", KindExt4, img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // after the parallel subtests
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canary, []byte(EscapeToken), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Outside = map[string]string{"canary": canary}
	orig, err := contentSum(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, want string }{
		{"ok", OutcomeOK},
		{"error", OutcomeError},
		{"detail", OutcomeError},
		{"multiline", OutcomeUnclear},
		{"noprefix", OutcomeUnclear},
		{"ctlchar", OutcomeUnclear},
		{"panic", OutcomePanic},
		{"hang", OutcomeTimeout},
		{"alloc", OutcomeMemory},
		{"exit3", OutcomeCrash},
		{"signal", OutcomeCrash},
		{"writenext", OutcomeWrite},
		{"writecwd", OutcomeWrite},
		{"writetmp", OutcomeWrite},
		{"modify", OutcomeWrite},
		{"escape", OutcomeEscape},
		{"peek", OutcomeEscape},
		{"badtar", OutcomeOutput},
		{"runaway", OutcomeRunaway},
		{"flood", OutcomeRunaway},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig(bin, limiter)
			cfg.Timeout = 2 * time.Second
			if tc.mode == "alloc" {
				cfg.Timeout = 30 * time.Second // touching 600 MiB is slow on a busy machine
			}
			cfg.ExtraEnv = []string{"HOSTILE_FAKE=" + tc.mode}
			w, err := NewWorker(cfg, filepath.Join(dir, tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			v := NewVariant(1, 0, "self-test", b)
			v.zero(2048, 16) // a patch, so undo is exercised too
			tries := 1
			if tc.mode == "flood" {
				cfg.FileSize = 1 << 20
			}
			if tc.mode == "ok" || tc.mode == "badtar" || tc.mode == "flood" {
				tries = 8 // exports go to stdout or to a file, by the seed
			}
			var r *Result
			for i := 0; i < tries; i++ {
				r = w.Check(v)
				if r.Outcome != tc.want {
					break
				}
				v = NewVariant(1, i+1, "self-test", b)
				v.zero(2048, 16)
			}
			if r.Outcome != tc.want {
				t.Errorf("outcome %q, want %q; problems:\n%s", r.Outcome, tc.want, strings.Join(r.Problems, "\n"))
			}
			if p, ok := w.copies[b.Name]; ok {
				if sum, err := contentSum(p); err != nil || sum != orig {
					a, _ := os.ReadFile(p)
					o, _ := os.ReadFile(img)
					at := -1
					for i := range min(len(a), len(o)) {
						if a[i] != o[i] {
							at = i
							break
						}
					}
					t.Errorf("the worker's copy differs from the base after the variant (%v): sizes %d %d, first difference at %d: %x vs %x", err, len(a), len(o), at, a[at:at+4], o[at:at+4])
				}
			}
		})
	}
}

func contentSum(p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestClassesAim checks that every class damages something on the bundled
// example (or, for table classes, on a disk fixture), that its variants
// change the image, and that a seed always gives the same variant.
func TestClassesAim(t *testing.T) {
	bases, _ := openBases(t, scratch(t), nil)
	for _, c := range Classes {
		effective := map[string]int{}
		for _, b := range bases {
			if !c.AppliesTo(b) {
				continue
			}
			for i := 0; i < 40; i++ {
				v := NewVariant(7, i, c.Name, b)
				c.Gen(v)
				again := NewVariant(7, i, c.Name, b)
				c.Gen(again)
				if v.String() != again.String() || !samePatches(v.Patches, again.Patches) || v.Truncate != again.Truncate || fmt.Sprint(v.Ops) != fmt.Sprint(again.Ops) {
					t.Fatalf("%s on %s: variant %d differs between two generations:\n%s\n%s", c.Name, b.Name, i, v, again)
				}
				if v.Skip {
					continue
				}
				changed := v.Truncate >= 0 || len(v.Ops) > 0
				for _, p := range v.Patches {
					orig := make([]byte, len(p.Data))
					b.readIn(p.File, orig, p.Off)
					if !bytes.Equal(orig, p.Data) {
						changed = true
					}
				}
				if changed {
					effective[b.Name]++
				}
			}
		}
		want := "example-state"
		switch c.Name {
		case "gpt-header", "gpt-entries":
			want = "example-disk"
		case "mbr":
			want = "mbr"
		case "tar-header":
			want = "example-tree"
		case "docker-config", "docker-ids", "docker-links", "docker-logs":
			want = "docker-disk"
		case "lvm-label", "lvm-metadata":
			want = "example-lvm"
		case "e01-sections", "e01-tables":
			want = "ev-" + FormatE01
		case "qcow2-header", "qcow2-tables":
			want = "ev-" + FormatQCOW2
		case "vmdk-grains":
			want = "ev-" + FormatVMDK
		case "vmdk-descriptor":
			want = "ev-" + FormatVMDKDesc
		case "vhd-bat":
			want = "ev-" + FormatVHD
		case "vhdx-regions":
			want = "ev-" + FormatVHDX
		case "cstorage-json", "cstorage-links", "podman-bolt":
			want = "podman-disk"
		case "podman-sqlite":
			want = "podman5-disk"
		}
		if strings.HasPrefix(c.Name, "xfs-") {
			want = "xfs-default"
		}
		if f, ok := strings.CutPrefix(want, "ev-"); ok {
			if tool := EvidenceToolsMissing(f); tool != "" {
				t.Logf("class %s: skipped, %s not installed", c.Name, tool)
				continue
			}
		}
		if effective[want] == 0 {
			t.Errorf("class %s changed nothing on %s (effective variants per base: %v)", c.Name, want, effective)
		}
	}
}

func samePatches(a, b []Patch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].File != b[i].File || a[i].Off != b[i].Off || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}
