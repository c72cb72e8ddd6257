package safeout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClaim(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "evidence.raw")
	os.WriteFile(in, []byte("evidence"), 0o444)
	os.Symlink("evidence.raw", filepath.Join(dir, "link"))
	os.Link(in, filepath.Join(dir, "hard"))
	evdir := filepath.Join(dir, "evdir")
	os.MkdirAll(filepath.Join(evdir, "sub"), 0o755)
	os.Symlink("evdir/sub", filepath.Join(dir, "sublink"))
	os.WriteFile(filepath.Join(dir, "old.tar"), []byte("old"), 0o644)
	os.Symlink("nowhere", filepath.Join(dir, "dangling"))
	for _, tt := range []struct {
		name   string
		force  bool
		claims []string
		want   string // error text of the last claim; "" = accepted
	}{
		{"input", false, []string{in}, "it is the input image"},
		{"input forced", true, []string{in}, "it is the input image"},
		{"symlink to input", true, []string{filepath.Join(dir, "link")}, "it is the input image"},
		{"hardlink of input", true, []string{filepath.Join(dir, "hard")}, "it is the input image"},
		{"other spelling", true, []string{dir + "/./evidence.raw"}, "it is the input image"},
		{"inside evidence dir", true, []string{filepath.Join(evdir, "x.tar")}, "it lies in the evidence directory"},
		{"inside via symlinked dir", true, []string{filepath.Join(dir, "sublink", "x.tar")}, "it lies in the evidence directory"},
		{"existing", false, []string{filepath.Join(dir, "old.tar")}, "exists: not replaced unless forced"},
		{"existing forced", true, []string{filepath.Join(dir, "old.tar")}, ""},
		{"new", false, []string{filepath.Join(dir, "new.tar")}, ""},
		{"dangling symlink", true, []string{filepath.Join(dir, "dangling")}, "dangling symlink"},
		{"twice", false, []string{filepath.Join(dir, "a"), filepath.Join(dir, "a")}, "name the same file"},
		{"twice other spelling", false, []string{filepath.Join(dir, "a"), dir + "/../" + filepath.Base(dir) + "/a"}, "name the same file"},
		{"directory", true, []string{dir}, "is a directory"},
		{"dev null", false, []string{os.DevNull}, ""},
		{"stdout", false, []string{"-"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.force)
			if err := g.Protect(in, "the input image"); err != nil {
				t.Fatal(err)
			}
			if err := g.Protect(evdir, "the evidence directory"); err != nil {
				t.Fatal(err)
			}
			var err error
			for _, c := range tt.claims {
				err = g.Claim(c)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// A protection added after the claims (the decompressed copy, known once
// the input is opened) checks them again.
func TestProtectAfterClaim(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(dir, "copy.raw")
	os.WriteFile(cp, nil, 0o600)
	g := New(true)
	if err := g.Claim(cp); err != nil {
		t.Fatal(err)
	}
	if err := g.Protect(dir, "the cache"); err == nil || !strings.Contains(err.Error(), "lies in the cache") {
		t.Errorf("err %v", err)
	}
}

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	g := New(false)
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if err := g.Claim(p); err != nil {
			t.Fatal(err)
		}
	}
	f, err := g.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tar"))
	if _, err := os.Stat(a); err == nil {
		t.Error("the final name exists before Commit")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(a); string(data) != "tar" {
		t.Errorf("a.tar holds %q", data)
	}
	f, err = g.Create(b)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	f.Abort()
	// A file that appears under the name while it is written is kept.
	f, err = g.Create(filepath.Join(dir, "c.tar"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "c.tar"), []byte("theirs"), 0o644)
	if err := f.Commit(); err == nil || !strings.Contains(err.Error(), "appeared while it was written") {
		t.Errorf("commit over a new file: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "c.tar")); string(data) != "theirs" {
		t.Errorf("c.tar replaced: %q", data)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "a.tar c.tar" {
		t.Errorf("directory holds %v", names)
	}
}

func TestClaimDir(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if err := New(false).ClaimDir(full); err == nil || !errors.Is(err, ErrExists) {
		t.Errorf("non-empty dir: %v", err)
	}
	if err := New(true).ClaimDir(full); err != nil {
		t.Errorf("forced: %v", err)
	}
	if err := New(false).ClaimDir(filepath.Join(dir, "new", "out")); err != nil {
		t.Errorf("new dir: %v", err)
	}
	g := New(true)
	g.Protect(full, "the evidence directory")
	if err := g.ClaimDir(full); err == nil {
		t.Error("evidence directory claimed")
	}
	if err := g.ClaimDir(filepath.Join(full, "out")); err == nil {
		t.Error("directory inside evidence claimed")
	}
}

func TestCheckStdout(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "evidence.raw")
	os.WriteFile(in, []byte("evidence"), 0o644)
	g := New(false)
	g.Protect(in, "the input image")
	f, _ := os.OpenFile(in, os.O_WRONLY|os.O_APPEND, 0)
	defer f.Close()
	if err := g.CheckStdout(f); err == nil {
		t.Error("stdout appending to the input accepted")
	}
	other, _ := os.Create(filepath.Join(dir, "out"))
	defer other.Close()
	if err := g.CheckStdout(other); err != nil {
		t.Error(err)
	}
}
