package node

import (
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"testing/fstest"

	"github.com/ctrlift/ctrlift/containerd"
)

// isBolt reports whether f starts with a bbolt meta page: a loose
// containerd database given as -i instead of a disk or directory.
func isBolt(f *os.File) bool {
	var h [20]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return false
	}
	const metaPage, magic = 0x04, 0xED0CDAED
	return binary.LittleEndian.Uint16(h[8:]) == metaPage && binary.LittleEndian.Uint32(h[16:]) == magic
}

// looseDB presents one meta.db file as a containerd root holding only it,
// so that what needs no layers (containers, images, snapshots, content
// records) can be listed. The file is read in place, never copied.
type looseDB struct {
	skeleton fstest.MapFS
	f        *os.File
	fi       fs.FileInfo
}

func newLooseDB(f *os.File) (*looseDB, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &looseDB{skeleton: fstest.MapFS{containerd.MetaDBPath: {Mode: 0o600}}, f: f, fi: fi}, nil
}

func (l *looseDB) Open(name string) (fs.File, error) {
	if name == containerd.MetaDBPath {
		return &looseFile{SectionReader: io.NewSectionReader(l.f, 0, l.fi.Size()), fi: l.fi}, nil
	}
	return l.skeleton.Open(name)
}

func (l *looseDB) Close() error { return l.f.Close() }

type looseFile struct {
	*io.SectionReader
	fi fs.FileInfo
}

func (f *looseFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *looseFile) Close() error               { return nil }
