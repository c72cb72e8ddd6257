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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

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
	Warnings  []string // entries exported as recorded that their filesystem could not hold
	TarSHA256 string   // of the uncompressed tar stream
}

// linkKey identifies an inode: hardlinks exist only within one layer.
type linkKey struct {
	fs  vfs.FS
	ino uint64
}

type writer struct {
	bw       *stream // the tar stream
	opt      Options
	enc      *json.Encoder
	links    map[linkKey]*linkInfo
	internal func(xattr string) bool // overlay internals to leave out
	stats    Stats
	fileHash *fileHashes
	hdrBuf   bytes.Buffer // where tar.Writer renders headers
	hdrFree  chan []byte  // header buffers written out, to render into again

	budget       budget
	mountsSeen   map[string]bool // the mounts placed
	zerosWritten int64           // holes written out as zeros
	oversized    int             // files larger than their filesystem can hold
}

// linkInfo is the first name of a hardlinked file and its digest.
type linkInfo struct {
	name    string
	sums    Digests
	omitted string
}

func newWriter(w io.Writer, opt Options) *writer {
	wr := &writer{
		bw:       newStream(w),
		opt:      opt,
		links:    map[linkKey]*linkInfo{},
		budget:   newBudget(),
		internal: layers.Options{}.Internal,
		hdrFree:  make(chan []byte, pipelineDepth+1), // every buffer in the queue can come back
	}
	if opt.Manifest != nil {
		wr.enc = json.NewEncoder(opt.Manifest)
		wr.enc.SetEscapeHTML(false)
		wr.fileHash = newFileHashes(opt.Hashes)
	}
	return wr
}

// close writes the end of the archive (two zero blocks, as tar.Writer
// does) and returns the totals.
func (w *writer) close() (*Stats, error) {
	_, err := w.bw.Write(zeros[:1024])
	sum, ferr := w.bw.close(err != nil)
	w.stats.TarSHA256 = sum
	if more := w.oversized - maxSizeWarnings; more > 0 {
		w.stats.Warnings = append(w.stats.Warnings, fmt.Sprintf("%d more files claim more bytes than their filesystem can hold", more))
	}
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	return &w.stats, nil
}

// pipelineDepth bounds the entries prepared ahead of the one being
// written: enough to keep both goroutines busy across a run of small
// files, few enough that open files and headers stay a few megabytes.
const pipelineDepth = 512

// errWriterFailed stops the walk when writing has failed.
var errWriterFailed = errors.New("export: writer failed")

// Tar writes the merged tree m as a tar stream to out, with the trees
// of opt.Mounts in place of what m holds at their paths.
//
// Two goroutines share the work: the walk merges the layers, reads the
// inodes and renders each entry's header; the writer copies file data
// into the stream (a third one digests the stream). Entries pass between
// them in walk order through a bounded queue, so the archive is the same
// byte for byte as a single goroutine would write it.
func Tar(out io.Writer, m *layers.Merged, opt Options) (*Stats, error) {
	mounts, err := newMountTable(opt.Mounts)
	if err != nil {
		return nil, err
	}
	w := newWriter(out, opt)
	if len(mounts) > 0 {
		return w.tarWithMounts(m, mounts)
	}
	queue := make(chan *entry, pipelineDepth)
	stop := make(chan struct{})
	var writeErr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for e := range queue {
			if writeErr == nil {
				if writeErr = w.emit(e); writeErr != nil {
					close(stop)
				}
			}
			e.release()
		}
	}()
	err = m.Walk(func(p string, le *layers.Entry) error {
		e, err := w.prepareEntry(p, le)
		if err != nil || e == nil {
			return err
		}
		select {
		case queue <- e:
			return nil
		case <-stop:
			e.release()
			return errWriterFailed
		}
	})
	close(queue)
	<-written
	if writeErr != nil {
		err = writeErr // it is about an entry before the walk's
	}
	if err != nil {
		w.bw.close(true) // stop the hasher
		return nil, err
	}
	return w.close()
}

// tarWithMounts is Tar on one goroutine, placing the mounts.
func (w *writer) tarWithMounts(m *layers.Merged, mounts mountTable) (*Stats, error) {
	err := m.Walk(func(p string, e *layers.Entry) error {
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
	for _, mt := range w.opt.Mounts {
		if p := strings.Trim(mt.Path, "/"); !w.mountsSeen[p] && err == nil {
			// The runtime made the mount point when it was missing; the
			// layers hold none, so the mount cannot be placed in order.
			w.stats.Skipped = append(w.stats.Skipped, fmt.Sprintf("/%s: %s: no mount point in the container's layers", p, mt.Name))
		}
	}
	if err != nil {
		w.bw.close(true) // stop the hasher
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
		w.bw.close(true) // stop the hasher
		return nil, err
	}
	return w.close()
}

// marker writes an empty whiteout file as OCI layers spell them.
func (w *writer) marker(p string, in *vfs.Inode, layer string) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0, ModTime: in.Mtime, Format: tar.FormatPAX}
	b, err := w.render(hdr)
	if err != nil {
		return fmt.Errorf("export: %s: %w", p, err)
	}
	if _, err := w.bw.Write(b); err != nil {
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
	ent, err := w.prepareEntry(p, e)
	if err != nil || ent == nil {
		return err
	}
	defer ent.release()
	return w.emit(ent)
}

// prepareEntry is prepare for a merged entry.
func (w *writer) prepareEntry(p string, e *layers.Entry) (*entry, error) {
	if !e.Metacopy {
		return w.prepare(p, e.Inode, e.FS(), e.LayerName, nil)
	}
	return w.prepare(p, e.Inode, e.FS(), e.LayerName, func(r *Record) {
		r.DataLayer, r.DataMissing = e.DataLayerName, e.DataMissing
	})
}

// addNoted is add with note, when set, completing the manifest record.
func (w *writer) addNoted(p string, in *vfs.Inode, fsys vfs.FS, layer string, note func(*Record)) error {
	ent, err := w.prepare(p, in, fsys, layer, note)
	if err != nil || ent == nil {
		return err
	}
	defer ent.release()
	return w.emit(ent)
}

// entry is one tar entry, prepared by the walk and written by emit: its
// header blocks, the data to copy after them, and its manifest record.
type entry struct {
	name   string // the record's path, for errors
	hdr    []byte // header blocks; for a sparse entry the map too
	data   vfs.File
	size   int64     // data bytes of a plain entry
	spans  []span    // a sparse entry's data stretches, with the final one
	stored int64     // a sparse entry's map and data bytes
	bytes  int64     // what the entry adds to Stats.Bytes
	hash   bool      // digest the contents for the manifest
	rec    *Record   // the manifest record; nil without a manifest
	first  *linkInfo // a hard link: its first name, whose digests it takes
	link   *linkInfo // the first name of a hard-linked file
	note   func(*Record)
}

// release closes the entry's file.
func (e *entry) release() {
	if e.data != nil {
		closeFile(e.data)
		e.data = nil
	}
}

// render returns the header blocks tar.Writer writes for hdr: the PAX
// extended header, if any, and the ustar header. tar.Writer writes them as
// soon as WriteHeader is called, so they are taken from its output.
func (w *writer) render(hdr *tar.Header) ([]byte, error) {
	if fastHeaderOK(hdr) {
		var b []byte
		select {
		case b = <-w.hdrFree:
		default:
			b = make([]byte, 0, 1536)
		}
		return appendPAXHeader(b, hdr), nil
	}
	w.hdrBuf.Reset()
	if err := tar.NewWriter(&w.hdrBuf).WriteHeader(hdr); err != nil {
		return nil, err
	}
	return bytes.Clone(w.hdrBuf.Bytes()), nil
}

// maxSizeWarnings bounds the size warnings of one export; the rest are
// counted in the last one.
const maxSizeWarnings = 20

// checkSize warns of a file whose size its filesystem cannot hold: a
// forged or damaged size field. The file is still exported as recorded
// (its bytes past the mapped data are holes), but a consumer that
// expands holes, or extracts onto a real filesystem, is in for a
// surprise, and the analyst should know the size is not real.
func (w *writer) checkSize(fsys vfs.FS, in *vfs.Inode, name string) {
	m, ok := fsys.(vfs.MaxFileSizer)
	if !ok || m.MaxFileSize() <= 0 || in.Size <= m.MaxFileSize() {
		return
	}
	w.oversized++
	if w.oversized <= maxSizeWarnings {
		w.stats.Warnings = append(w.stats.Warnings, fmt.Sprintf("%s: inode %d claims %d bytes, more than a file of its filesystem can hold (%d): a forged or damaged size, exported as recorded (the bytes past its data are holes)", name, in.Ino, in.Size, m.MaxFileSize()))
	}
}

// recordPath is the path a record (and an error) shows for p.
func recordPath(p string) string {
	mp := manifestPath(p)
	if !utf8.ValidString(mp) {
		return EscapeInvalid(mp)
	}
	return mp
}

// prepare describes one entry: what the walk does for it, in walk order.
// It returns nil for what a tar cannot hold (sockets).
func (w *writer) prepare(p string, in *vfs.Inode, fsys vfs.FS, layer string, note func(*Record)) (*entry, error) {
	typ, kind := fileType(in)
	if kind == "" {
		// Sockets cannot be stored in a tar; they carry no data anyway.
		w.stats.Skipped = append(w.stats.Skipped, fmt.Sprintf("%s: socket not representable in tar", manifestPath(p)))
		return nil, nil
	}
	hdr := tar.Header{
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
	e := &entry{note: note}
	var me *Record
	if w.enc != nil {
		r, err := NewRecord(manifestPath(p), in, fsys)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", manifestPath(p), err)
		}
		me = &r
		me.Layer = layer
		me.Sparse = false // set below for the files whose data is written
		e.name = me.Path
	} else {
		e.name = recordPath(p)
	}
	e.rec = me
	fail := func(err error) (*entry, error) {
		e.release()
		return nil, err
	}
	switch typ {
	case tar.TypeReg:
		key := linkKey{fsys, in.Ino}
		if first, ok := w.links[key]; ok && in.Nlink > 1 {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first.name
			e.first = first
			if me != nil {
				me.HardlinkTo = manifestPath(first.name)
			}
		} else {
			if in.Nlink > 1 {
				e.link = &linkInfo{name: p}
				w.links[key] = e.link
			}
			r, err := fsys.Open(in)
			if err != nil {
				return fail(fmt.Errorf("export: %s: %w", e.name, err))
			}
			e.data = r
			spans, mapped, err := sparseLayout(r, in.Ino, fsys.DataBound(), w.zerosWritten >= maxZerosWritten)
			if err != nil {
				return fail(fmt.Errorf("export: %s: %w", e.name, err))
			}
			if err := w.budget.read(fsys, in.Ino, mapped); err != nil {
				return fail(fmt.Errorf("export: %s: %w", e.name, err))
			}
			if spans == nil {
				w.zerosWritten += in.Size - mapped
			}
			e.spans = spans
			w.checkSize(fsys, in, e.name)
			hdr.Size = in.Size
			e.size = in.Size
			e.bytes = in.Size
			e.hash = w.fileHash != nil
			if me != nil {
				me.Sparse = in.Sparse()
			}
		}
	case tar.TypeSymlink:
		// The record's target is escaped when it is not UTF-8; the tar
		// carries the bytes as stored.
		t, err := fsys.LinkTarget(in)
		if err != nil {
			return fail(fmt.Errorf("export: %s: %w", e.name, err))
		}
		hdr.Linkname = t
	case tar.TypeChar, tar.TypeBlock:
		hdr.Devmajor, hdr.Devminor = int64(in.RdevMajor), int64(in.RdevMinor)
	}
	if len(in.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for _, x := range in.Xattrs {
			if w.internal(x.Name) {
				if me != nil {
					delete(me.Xattrs, x.Name)
				}
				continue
			}
			hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
		}
		if me != nil && len(me.Xattrs) == 0 {
			me.Xattrs = nil
		}
	}
	if e.spans != nil {
		var holes int64 = in.Size
		for _, s := range e.spans {
			holes -= s.n
		}
		// Hashing a hole costs as much as reading it: the export hashes
		// holes within a budget, so a forged size cannot stall it.
		if w.fileHash != nil {
			e.hash, me.SHA256Omitted = w.budget.hashHoles(fsys, holes)
		}
		b, err := w.sparsePrefix(&hdr, e)
		if err != nil {
			return fail(fmt.Errorf("export: %s: %w", e.name, err))
		}
		e.hdr = b
		return e, nil
	}
	b, err := w.render(&hdr)
	if err != nil {
		return fail(fmt.Errorf("export: %s: tar header: %w", e.name, err))
	}
	e.hdr = b
	return e, nil
}

// emit writes a prepared entry: what the writer goroutine does, in order.
func (w *writer) emit(e *entry) error {
	if _, err := w.bw.Write(e.hdr); err != nil {
		return fmt.Errorf("export: %s: tar header: %w", e.name, err)
	}
	select {
	case w.hdrFree <- e.hdr[:0]: // written: the walk may render into it again
		e.hdr = nil
	default:
	}
	me := e.rec
	switch {
	case e.spans != nil:
		if err := w.writeSparse(e); err != nil {
			return fmt.Errorf("export: %s: %w", e.name, err)
		}
		w.stats.Bytes += e.bytes
		if e.hash {
			me.setDigests(w.fileHash.sums())
		}
	case e.data != nil:
		var fh io.Writer
		if e.hash {
			w.fileHash.Reset()
			fh = w.fileHash
		}
		n, err := w.bw.copyData(e.data, 0, e.size, fh, true)
		if err != nil {
			return fmt.Errorf("export: %s: %w", e.name, err)
		}
		if n != e.size {
			return fmt.Errorf("export: %s: read %d of %d bytes", e.name, n, e.size)
		}
		if _, err := w.bw.Write(zeros[:pad(n)]); err != nil {
			return fmt.Errorf("export: %s: %w", e.name, err)
		}
		w.stats.Bytes += n
		if e.hash {
			me.setDigests(w.fileHash.sums())
		}
	}
	if e.first != nil && me != nil {
		// Later names of the file carry the first one's digest.
		me.SHA256Omitted = e.first.omitted
		me.setDigests(e.first.sums)
	}
	if e.link != nil && me != nil {
		e.link.sums, e.link.omitted = me.digests(), me.SHA256Omitted
	}
	w.stats.Files++
	if w.opt.Progress != nil {
		w.opt.Progress(w.stats.Files, w.stats.Bytes)
	}
	if me != nil {
		if e.note != nil {
			e.note(me)
		}
		if err := w.enc.Encode(me); err != nil {
			return fmt.Errorf("export: manifest: %w", err)
		}
	}
	return nil
}
