// Package overlaystore reads the on-disk layout that Docker's overlay2
// driver and containers/storage's overlay driver share: a layer's files in
// <base>/<id>/diff, its lower layers in <base>/<id>/lower as
// "l/<short>:l/<short>...", each <base>/l/<short> a symlink to
// ../<id>/diff, and <base>/<id>/link holding the layer's short name. Links
// are read as data and never followed; every file read is bounded.
package overlaystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Lower is one entry of a layer's lower file, top first.
type Lower struct {
	ID    string // the layer's id, from its l/ link or its link file
	Short string // the short link name the lower file gives
	Dir   string // <base>/<id>/diff, a directory on the disk
}

// Limits bound what ReadLower reads.
type Limits struct {
	LowerFile int64 // bytes of a lower file
	LinkFile  int64 // bytes of a link file
	Layers    int   // entries of a lower file
	Entries   int   // directory entries of base scanned for link files
}

// ReadLower reads <base>/<top>/lower. A layer without a lower file has
// none (nil, nil). validID says which ids a link may name. When an l/
// link is gone (a copy that lost symlinks), the layers' link files are
// matched instead.
func ReadLower(fsys fs.FS, base, top string, validID func(string) bool, lim Limits) ([]Lower, error) {
	lowerPath := path.Join(base, top, "lower")
	b, err := ReadFile(fsys, lowerPath, lim.LowerFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []Lower
	var links map[string]string // short name -> layer id, from the link files
	for _, e := range strings.Split(strings.TrimSpace(string(b)), ":") {
		if len(out) >= lim.Layers {
			return nil, fmt.Errorf("%s: more than %d layers", lowerPath, lim.Layers)
		}
		short, ok := strings.CutPrefix(e, "l/")
		if !ok || !ValidName(short) {
			return nil, fmt.Errorf("%s: entry %q is not l/<link>", lowerPath, Truncate(e))
		}
		id, err := LinkTarget(fsys, base, short, validID)
		if err != nil {
			if links == nil {
				links = linkFiles(fsys, base, validID, lim)
			}
			var found bool
			if id, found = links[short]; !found {
				return nil, fmt.Errorf("%s: link %s: %w", lowerPath, short, err)
			}
		}
		dir := path.Join(base, id, "diff")
		if !IsDir(fsys, dir) {
			return nil, fmt.Errorf("layer %s (link %s): %s is not a directory on the disk", id, short, dir)
		}
		out = append(out, Lower{ID: id, Short: short, Dir: dir})
	}
	return out, nil
}

// LinkTarget reads <base>/l/<short>, a symlink to ../<id>/diff, as data
// and returns <id>.
func LinkTarget(fsys fs.FS, base, short string, validID func(string) bool) (string, error) {
	if !ValidName(short) {
		return "", fmt.Errorf("link name %q is not a name", Truncate(short))
	}
	t, err := fs.ReadLink(fsys, path.Join(base, "l", short))
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(t, "../")
	id, ok2 := strings.CutSuffix(rest, "/diff")
	if !ok || !ok2 || !validID(id) {
		return "", fmt.Errorf("link target %q is not ../<id>/diff", Truncate(t))
	}
	return id, nil
}

// linkFiles maps each layer's short name (<base>/<id>/link) to its id.
func linkFiles(fsys fs.FS, base string, validID func(string) bool, lim Limits) map[string]string {
	m := map[string]string{}
	ents, err := fs.ReadDir(fsys, base)
	if err != nil {
		return m
	}
	for i, e := range ents {
		if i >= lim.Entries {
			break
		}
		if !e.IsDir() || e.Name() == "l" || !validID(e.Name()) {
			continue
		}
		b, err := ReadFile(fsys, path.Join(base, e.Name(), "link"), lim.LinkFile)
		if err != nil {
			continue
		}
		if short := strings.TrimSpace(string(b)); ValidName(short) {
			if _, dup := m[short]; !dup {
				m[short] = e.Name()
			}
		}
	}
	return m
}

// ValidName says whether s is one directory entry name a daemon writes:
// no separator, not "." or "..", printable ASCII.
func ValidName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '@', r == '+':
		default:
			return false
		}
	}
	return true
}

// IsDir says whether name is a directory.
func IsDir(fsys fs.FS, name string) bool {
	st, err := fs.Stat(fsys, name)
	return err == nil && st.IsDir()
}

// Truncate shortens s for an error message.
func Truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ReadFile reads a regular file of at most limit bytes.
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", name, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d-byte limit", name, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return b, nil
}
