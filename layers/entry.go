package layers

import "github.com/ctrlift/ctrlift/vfs"

// NewEntry is an entry of a tree that is not a layer (a volume mounted
// into the container), named source.
func NewEntry(in *vfs.Inode, fsys vfs.FS, source string) *Entry {
	return &Entry{Inode: in, LayerName: source, fs: fsys}
}
