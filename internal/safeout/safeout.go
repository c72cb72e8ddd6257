// Package safeout creates the files a command writes so that the evidence
// is never touched: an output that is the input image, its decompressed
// copy or another name of the same file (hardlink, symlink, bind path) is
// refused before anything is opened for writing; existing outputs are not
// replaced and non-empty output directories are not reused unless the
// caller forces it; two outputs naming one file are refused. Regular files
// are written under a temporary name beside the target and renamed into
// place on success, so a failed run leaves nothing half-written.
package safeout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrExists is wrapped by the errors for an output that exists (or a
// directory that is not empty) when the guard does not force.
var ErrExists = errors.New("not replaced unless forced")

// Guard checks and creates the outputs of one run. Its zero value is not
// usable: call New.
type Guard struct {
	force     bool
	protected []protected
	claimed   []claim
}

type protected struct {
	path string // absolute, symlinks resolved
	what string // "the input image", ...
	info fs.FileInfo
}

type claim struct {
	path string // as given
	abs  string // absolute, parent's symlinks resolved
}

// New returns a Guard. With force, existing outputs are replaced and
// non-empty output directories reused; the protected files stay refused.
func New(force bool) *Guard { return &Guard{force: force} }

// Protect marks path as evidence that no output may name. what says what
// it is in messages ("the input image"). A directory protects everything
// under it. Symlinks are followed: the protected thing is the file itself.
// Outputs claimed before are checked again: the decompressed copy of an
// input is known only once the input is opened.
func (g *Guard) Protect(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	abs, err := resolve(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if abs, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
		abs, _ = filepath.Abs(abs)
	}
	g.protected = append(g.protected, protected{path: abs, what: what + " " + path, info: fi})
	for _, c := range g.claimed {
		if c.path == "-" {
			if err := g.CheckStdout(os.Stdout); err != nil {
				return err
			}
			continue
		}
		cfi, _ := os.Stat(c.path)
		if err := g.checkProtected(c.path, c.abs, cfi); err != nil {
			return err
		}
	}
	return nil
}

// ProtectFile is Protect for an open file (the input as it was opened, or
// an unnamed temporary copy).
func (g *Guard) ProtectFile(f *os.File, what string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	g.protected = append(g.protected, protected{what: what, info: fi})
	return nil
}

// Claim checks that path may be written and reserves it: call it for every
// output of a run before creating any. "-" is standard output, checked
// with CheckStdout.
func (g *Guard) Claim(path string) error {
	if path == "" {
		return errors.New("empty output path")
	}
	if path == "-" {
		if err := g.CheckStdout(os.Stdout); err != nil {
			return err
		}
		g.claimed = append(g.claimed, claim{path: path})
		return nil
	}
	abs, err := resolve(path)
	if err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	fi, statErr := os.Stat(path)
	if err := g.checkProtected(path, abs, fi); err != nil {
		return err
	}
	for _, c := range g.claimed {
		if c.path != "-" && (c.abs == abs || (fi != nil && sameFile(c, fi))) {
			return fmt.Errorf("outputs %s and %s name the same file", c.path, path)
		}
	}
	switch {
	case statErr == nil:
		switch {
		case fi.IsDir():
			return fmt.Errorf("output %s is a directory", path)
		case fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0:
			return fmt.Errorf("output %s is a block device: refusing to write a tar onto a disk", path)
		case fi.Mode().IsRegular() && !g.force:
			return fmt.Errorf("output %s exists: %w", path, ErrExists)
		}
	case !errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("output %s: %w", path, statErr)
	default:
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("output %s is a dangling symlink; name the file itself", path)
		}
	}
	g.claimed = append(g.claimed, claim{path: path, abs: abs})
	return nil
}

func sameFile(c claim, fi fs.FileInfo) bool {
	other, err := os.Stat(c.path)
	return err == nil && os.SameFile(other, fi)
}

// checkProtected refuses an output that is, or lies inside, evidence.
func (g *Guard) checkProtected(path, abs string, fi fs.FileInfo) error {
	for _, p := range g.protected {
		same := fi != nil && (os.SameFile(p.info, fi) || sameDevice(p.info, fi))
		inside := p.info.IsDir() && p.path != "" && (abs == p.path || strings.HasPrefix(abs, p.path+string(filepath.Separator)))
		switch {
		case same || (p.path != "" && abs == p.path):
			return fmt.Errorf("refusing to write %s: it is %s", path, p.what)
		case inside:
			return fmt.Errorf("refusing to write %s: it lies in %s", path, p.what)
		}
	}
	return nil
}

// CheckStdout refuses standard output when it is redirected to evidence
// (`>> evidence.raw`).
func (g *Guard) CheckStdout(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return nil // closed or unusual stdout: nothing of ours to protect
	}
	for _, p := range g.protected {
		if os.SameFile(p.info, fi) || sameDevice(p.info, fi) {
			return fmt.Errorf("refusing to write to standard output: it is %s", p.what)
		}
	}
	return nil
}

// ClaimDir checks an output directory: not evidence, not inside evidence,
// and empty unless forced. It is created (with its parents) when missing.
func (g *Guard) ClaimDir(dir string) error {
	abs, err := resolve(dir)
	if err != nil {
		return fmt.Errorf("output directory %s: %w", dir, err)
	}
	fi, statErr := os.Stat(dir)
	if statErr == nil {
		if err := g.checkProtected(dir, abs, fi); err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("output directory %s is not a directory", dir)
		}
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		names, _ := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 && !g.force {
			return fmt.Errorf("output directory %s is not empty: %w", dir, ErrExists)
		}
		return nil
	}
	if !errors.Is(statErr, fs.ErrNotExist) {
		return statErr
	}
	if err := g.checkProtected(dir, abs, nil); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// File is an output being written. Write to it, then Commit or Abort.
type File struct {
	*os.File
	final  string
	tmp    string // "" when written in place (stdout, FIFO, device)
	force  bool
	closed bool
}

// Create opens a claimed output. Regular files go to a temporary file in
// the same directory until Commit; "-" is standard output; a FIFO or a
// character device (/dev/null) is opened as it is.
func (g *Guard) Create(path string) (*File, error) {
	if !g.isClaimed(path) {
		if err := g.Claim(path); err != nil {
			return nil, err
		}
	}
	if path == "-" {
		return &File{File: os.Stdout, final: path, closed: true}, nil
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &File{File: f, final: path}, nil
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for i := 0; ; i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.ctrlift-%d-%d", base, os.Getpid(), time.Now().UnixNano()+int64(i)))
		// O_EXCL: never open something that is already there; 0644 less
		// the user's umask, as any created file.
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return &File{File: f, final: path, tmp: tmp, force: g.force}, nil
		}
		if !errors.Is(err, fs.ErrExist) || i == 100 {
			return nil, fmt.Errorf("output %s: %w", path, err)
		}
	}
}

func (g *Guard) isClaimed(path string) bool {
	for _, c := range g.claimed {
		if c.path == path {
			return true
		}
	}
	return false
}

// Name is the output's final name.
func (f *File) Name() string { return f.final }

// Commit closes the file and moves it into place. Without force, a file
// that appeared under the final name meanwhile is not replaced.
func (f *File) Commit() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.File.Close(); err != nil {
		f.removeTemp()
		return err
	}
	if f.tmp == "" {
		return nil
	}
	var err error
	if f.force {
		err = os.Rename(f.tmp, f.final)
	} else {
		err = renameNoReplace(f.tmp, f.final)
	}
	if err != nil {
		f.removeTemp()
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("output %s appeared while it was written: %w", f.final, ErrExists)
		}
		return fmt.Errorf("output %s: %w", f.final, err)
	}
	return nil
}

// Abort closes the file and removes what was written; the final name is
// left as it was.
func (f *File) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.File.Close()
	f.removeTemp()
}

func (f *File) removeTemp() {
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// WriteFile writes data to a claimed path through Create and Commit.
func (g *Guard) WriteFile(path string, write func(io.Writer) error) error {
	f, err := g.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// resolve makes path absolute with the symlinks of its directories
// resolved, so that two spellings of one location compare equal. The last
// element is kept as it is (it may not exist yet), and so are directories
// that do not exist yet.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, rest := filepath.Dir(abs), filepath.Base(abs)
	for {
		rdir, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(rdir, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			return "", err
		}
		dir, rest = filepath.Dir(dir), filepath.Join(filepath.Base(dir), rest)
	}
}
