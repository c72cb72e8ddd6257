package export

import (
	"io"
	"path"
	"strings"

	"github.com/ctrlift/ctrlift/layers"
)

// ChangeSet writes a stream of changes (parents before children, as
// layers.Compare gives them) as an OCI layer tar: added and modified
// entries as they are, a deletion as a ".wh.<name>" marker; what lies
// below a deleted directory needs no marker of its own.
func ChangeSet(out io.Writer, changes func(fn func(layers.Change) error) error, opt Options) (*Stats, error) {
	w := newWriter(out, opt)
	var deletedDir string // the last deleted directory, "/a/b/"
	err := changes(func(ch layers.Change) error {
		if deletedDir != "" && strings.HasPrefix(ch.Path, deletedDir) {
			return nil
		}
		p := strings.TrimPrefix(ch.Path, "/")
		if ch.Kind == layers.Deleted {
			if ch.Entry.IsDir() {
				deletedDir = ch.Path + "/"
			}
			dir, name := path.Split(p)
			return w.marker(dir+".wh."+name, ch.Entry.Inode, ch.Entry.LayerName)
		}
		return w.add(p, ch.Entry.Inode, ch.Entry.FS(), ch.Entry.LayerName)
	})
	if err != nil {
		w.bw.close(true) // stop the hasher
		return nil, err
	}
	return w.close()
}
