// Package export streams a merged container filesystem (or one layer of
// it) into a PAX tar archive, with an optional JSON-lines manifest.
//
// The archive is deterministic: entries come in sorted path order and no
// header carries host data or the wall clock, so the same image always
// gives a byte-identical tar. Memory stays bounded: file contents are
// streamed, and only one directory listing per level of the tree is held.
package export

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/ctrlift/ctrlift/layers"
	"github.com/ctrlift/ctrlift/vfs"
)

// Options tune an export.
type Options struct {
	// Manifest, when set, receives one JSON object per entry.
	Manifest io.Writer
	// Progress, when set, is called after each entry with running totals.
	Progress func(files, bytes int64)
	// Hashes are the digests each file gets in the manifest; nil is
	// sha256 alone.
	Hashes []Hash
	// Mounts are trees shown at container paths (volumes, bind-mounted
	// files), written by Tar in place of what the layers hold there.
	Mounts []Mount
}

// Stats summarises an export.
type Stats struct {
	Files     int64 // entries written
	Bytes     int64 // file content bytes written
	Skipped   []string
	TarSHA256 string // of the uncompressed tar stream
}

// linkKey identifies an inode: hardlinks exist only within one layer.
type linkKey struct {
	fs  vfs.FS
	ino uint64
}

type writer struct {
	tw       *tar.Writer
	bw       *bufio.Writer // tar writes headers in 512-byte pieces
	sum      *asyncSum
	opt      Options
	enc      *json.Encoder
	links    map[linkKey]*linkInfo
	internal func(xattr string) bool // overlay internals to leave out
	stats    Stats
	buf      []byte
	fileHash *fileHashes

	budget       budget
	mountsSeen   map[string]bool // the mounts placed
	zerosWritten int64           // holes written out as zeros
}

// linkInfo is the first name of a hardlinked file and its digest.
type linkInfo struct {
	name    string
	sums    Digests
	omitted string
}

func newWriter(w io.Writer, opt Options) *writer {
	sum := newAsyncSum(w)
	bw := bufio.NewWriterSize(sum, 1<<20)
	wr := &writer{
		tw:       tar.NewWriter(bw),
		bw:       bw,
		sum:      sum,
		opt:      opt,
		links:    map[linkKey]*linkInfo{},
		budget:   newBudget(),
		buf:      make([]byte, 1<<20),
		internal: layers.Options{}.Internal,
	}
	if opt.Manifest != nil {
		wr.enc = json.NewEncoder(opt.Manifest)
		wr.enc.SetEscapeHTML(false)
		wr.fileHash = newFileHashes(opt.Hashes)
	}
	return wr
}

func (w *writer) close() (*Stats, error) {
	err := w.tw.Close()
	if err == nil {
		err = w.bw.Flush()
	}
	w.stats.TarSHA256 = w.sum.sum()
	if err != nil {
		return nil, err
	}
	return &w.stats, nil
}

// Tar writes the merged tree m as a tar stream to out, with the trees
// of opt.Mounts in place of what m holds at their paths.
func Tar(out io.Writer, m *layers.Merged, opt Options) (*Stats, error) {
	mounts, err := newMountTable(opt.Mounts)
	if err != nil {
		return nil, err
	}
	w := newWriter(out, opt)
	err = m.Walk(func(p string, e *layers.Entry) error {
		if mt, ok := mounts[p]; ok {
			err := w.addMount(p, mt, mounts, 0)
			if errors.Is(err, errMountMissing) {
				return w.addEntry(p, e)
			}
			if err == nil && e.IsDir() {
				return fs.SkipDir
			}
			return err
		}
		return w.addEntry(p, e)
	})
	for _, mt := range opt.Mounts {
		if p := strings.Trim(mt.Path, "/"); !w.mountsSeen[p] && err == nil {
			// The runtime made the mount point when it was missing; the
			// layers hold none, so the mount cannot be placed in order.
			w.stats.Skipped = append(w.stats.Skipped, fmt.Sprintf("/%s: %s: no mount point in the container's layers", p, mt.Name))
		}
	}
	if err != nil {
		w.sum.sum() // stop the hasher
		return nil, err
	}
	return w.close()
}

// Changes writes one layer (a container's writable snapshot) as an OCI
// layer tar: whiteouts become ".wh.<name>" and opaque directories get a
// ".wh..wh..opq" entry, so the tar applies on top of the image's layers.
func Changes(out io.Writer, l layers.Layer, rules layers.Options, opt Options) (*Stats, error) {
	w := newWriter(out, opt)
	w.internal = rules.Internal
	err := layers.WalkLayer(l, rules, func(p string, e *layers.Entry) error {
		if e.Whiteout {
			dir, name := path.Split(p)
			return w.marker(dir+".wh."+name, e.Inode, l.Name)
		}
		if err := w.add(p, e.Inode, e.FS(), l.Name); err != nil {
			return err
		}
		if e.Opaque {
			mp := ".wh..wh..opq"
			if p != "." {
				mp = p + "/" + mp
			}
			return w.marker(mp, e.Inode, l.Name)
		}
		return nil
	})
	if err != nil {
		w.sum.sum() // stop the hasher
		return nil, err
	}
	return w.close()
}

// marker writes an empty whiteout file as OCI layers spell them.
func (w *writer) marker(p string, in *vfs.Inode, layer string) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0, ModTime: in.Mtime, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("export: %s: %w", p, err)
	}
	w.stats.Files++
	if w.enc != nil {
		dir, name := path.Split(p)
		me := Record{Path: "/" + strings.TrimPrefix(dir+name, "./"), Type: "file", Mode: "0000", MtimeNs: in.Mtime.UnixNano(), Layer: layer}
		if name == ".wh..wh..opq" {
			me.Opaque = true
		} else {
			me.Whiteout = true
		}
		return w.enc.Encode(me)
	}
	return nil
}

func tarName(p string, dir bool) string {
	if p == "." {
		return "./"
	}
	if dir {
		return p + "/"
	}
	return p
}

func manifestPath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

func fileType(in *vfs.Inode) (byte, string) {
	switch {
	case in.IsRegular():
		return tar.TypeReg, "file"
	case in.IsDir():
		return tar.TypeDir, "dir"
	case in.IsSymlink():
		return tar.TypeSymlink, "symlink"
	case in.IsCharDev():
		return tar.TypeChar, "char"
	case in.IsBlockDev():
		return tar.TypeBlock, "block"
	case in.IsFIFO():
		return tar.TypeFifo, "fifo"
	}
	return 0, ""
}

// add writes one entry. fsys holds the inode's data.
func (w *writer) add(p string, in *vfs.Inode, fsys vfs.FS, layer string) error {
	return w.addNoted(p, in, fsys, layer, nil)
}

// addEntry writes a merged entry: a metadata-only copy-up names the layer
// its data comes from, or says that it is missing.
func (w *writer) addEntry(p string, e *layers.Entry) error {
	if !e.Metacopy {
		return w.add(p, e.Inode, e.FS(), e.LayerName)
	}
	return w.addNoted(p, e.Inode, e.FS(), e.LayerName, func(r *Record) {
		r.DataLayer, r.DataMissing = e.DataLayerName, e.DataMissing
	})
}

// addNoted is add with note, when set, completing the manifest record.
func (w *writer) addNoted(p string, in *vfs.Inode, fsys vfs.FS, layer string, note func(*Record)) error {
	typ, kind := fileType(in)
	if kind == "" {
		// Sockets cannot be stored in a tar; they carry no data anyway.
		w.stats.Skipped = append(w.stats.Skipped, fmt.Sprintf("%s: socket not representable in tar", manifestPath(p)))
		return nil
	}
	hdr := &tar.Header{
		Typeflag:   typ,
		Name:       tarName(p, in.IsDir()),
		Mode:       int64(in.Mode & 0o7777),
		Uid:        int(in.Uid),
		Gid:        int(in.Gid),
		ModTime:    in.Mtime,
		AccessTime: in.Atime,
		ChangeTime: in.Ctime,
		Format:     tar.FormatPAX,
	}
	me, err := NewRecord(manifestPath(p), in, fsys)
	if err != nil {
		return fmt.Errorf("export: %s: %w", manifestPath(p), err)
	}
	me.Layer = layer
	me.Sparse = false // set below for the files whose data is written
	var data vfs.File
	var spans []span // non-nil: a sparse entry
	var link *linkInfo
	switch typ {
	case tar.TypeReg:
		key := linkKey{fsys, in.Ino}
		if first, ok := w.links[key]; ok && in.Nlink > 1 {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first.name
			me.HardlinkTo = manifestPath(first.name)
			me.SHA256Omitted = first.omitted
			me.setDigests(first.sums)
		} else {
			if in.Nlink > 1 {
				link = &linkInfo{name: p}
				w.links[key] = link
			}
			r, err := fsys.Open(in)
			if err != nil {
				return fmt.Errorf("export: %s: %w", me.Path, err)
			}
			defer closeFile(r)
			var mapped int64
			spans, mapped, err = sparseLayout(r, in.Ino, fsys.DataBound(), w.zerosWritten >= maxZerosWritten)
			if err != nil {
				return fmt.Errorf("export: %s: %w", me.Path, err)
			}
			if err := w.budget.read(fsys, in.Ino, mapped); err != nil {
				return fmt.Errorf("export: %s: %w", me.Path, err)
			}
			if spans == nil {
				w.zerosWritten += in.Size - mapped
			}
			data = r
			hdr.Size = in.Size
			me.Sparse = in.Sparse()
		}
	case tar.TypeSymlink:
		// The record's target is escaped when it is not UTF-8; the tar
		// carries the bytes as stored.
		t, err := fsys.LinkTarget(in)
		if err != nil {
			return fmt.Errorf("export: %s: %w", me.Path, err)
		}
		hdr.Linkname = t
	case tar.TypeChar, tar.TypeBlock:
		hdr.Devmajor, hdr.Devminor = int64(in.RdevMajor), int64(in.RdevMinor)
	}
	if len(in.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for _, x := range in.Xattrs {
			if w.internal(x.Name) {
				delete(me.Xattrs, x.Name)
				continue
			}
			hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
		}
		if len(me.Xattrs) == 0 {
			me.Xattrs = nil
		}
	}
	switch {
	case spans != nil:
		var holes int64 = in.Size
		for _, s := range spans {
			holes -= s.n
		}
		// Hashing a hole costs as much as reading it: the export hashes
		// holes within a budget, so a forged size cannot stall it.
		hash := false
		if w.fileHash != nil {
			hash, me.SHA256Omitted = w.budget.hashHoles(fsys, holes)
		}
		if err := w.writeSparse(hdr, data, spans, hash); err != nil {
			return fmt.Errorf("export: %s: %w", me.Path, err)
		}
		w.stats.Bytes += in.Size
		if hash {
			me.setDigests(w.fileHash.sums())
		}
	case data != nil:
		if err := w.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("export: %s: tar header: %w", me.Path, err)
		}
		var dst io.Writer = w.tw
		if w.fileHash != nil {
			w.fileHash.Reset()
			dst = io.MultiWriter(w.tw, w.fileHash)
		}
		n, err := io.CopyBuffer(dst, io.LimitReader(data, in.Size), w.buf)
		if err != nil {
			return fmt.Errorf("export: %s: %w", me.Path, err)
		}
		if n != in.Size {
			return fmt.Errorf("export: %s: read %d of %d bytes", me.Path, n, in.Size)
		}
		w.stats.Bytes += n
		if w.fileHash != nil {
			me.setDigests(w.fileHash.sums())
		}
	default:
		if err := w.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("export: %s: tar header: %w", me.Path, err)
		}
	}
	if link != nil {
		// Later names of the file carry the same digest in the manifest.
		link.sums, link.omitted = me.digests(), me.SHA256Omitted
	}
	w.stats.Files++
	if w.opt.Progress != nil {
		w.opt.Progress(w.stats.Files, w.stats.Bytes)
	}
	if note != nil {
		note(&me)
	}
	if w.enc != nil {
		if err := w.enc.Encode(me); err != nil {
			return fmt.Errorf("export: manifest: %w", err)
		}
	}
	return nil
}
