package node

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/vfs"
)

// hasher digests the timeline's files on worker goroutines while the walk
// goes on, as an export hashes its stream on a second core; entries wait
// in a queue, in walk order, until their digests are in, so the rows come
// in the same order as without hashing. Each worker has its own
// export.Digester and so its own reading budgets.
type hasher struct {
	jobs     chan *hashJob
	wg       sync.WaitGroup
	stopped  atomic.Bool
	pending  []pendingEntry
	inflight map[inodeKey]*hashJob       // hard-linked files being hashed
	cache    map[inodeKey]export.Digests // hard-linked files hashed
}

type inodeKey struct {
	fs  vfs.FS
	ino uint64
}

type hashJob struct {
	fsys    vfs.FS
	in      *vfs.Inode
	d       export.Digests
	omitted string
	err     error
	done    chan struct{}
}

type pendingEntry struct {
	r   *TimelineRow
	job *hashJob // nil: nothing to wait for
}

const (
	maxHashCache   = 100_000 // hard-linked inodes whose digests are kept
	maxHashPending = 256     // entries waiting for their digests
)

func newHasher(hashes []export.Hash) *hasher {
	workers := min(max(runtime.GOMAXPROCS(0), 2), 4)
	h := &hasher{jobs: make(chan *hashJob, maxHashPending), inflight: map[inodeKey]*hashJob{}, cache: map[inodeKey]export.Digests{}}
	for range workers {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			dg := export.NewDigester(hashes...)
			for j := range h.jobs {
				if !h.stopped.Load() {
					j.d, j.omitted, j.err = dg.Digests(j.fsys, j.in)
				} else {
					j.err = fmt.Errorf("timeline stopped")
				}
				close(j.done)
			}
		}()
	}
	return h
}

// stop ends the workers; nil is a no-op.
func (h *hasher) stop() {
	if h == nil || h.stopped.Swap(true) {
		return
	}
	close(h.jobs)
	h.wg.Wait()
}

// submit starts digesting a regular file, or finds it digested or being
// digested under another name.
func (h *hasher) submit(fsys vfs.FS, in *vfs.Inode) *hashJob {
	key := inodeKey{fsys, in.Ino}
	if in.Nlink > 1 {
		if d, ok := h.cache[key]; ok {
			j := &hashJob{d: d, done: make(chan struct{})}
			close(j.done)
			return j
		}
		if j := h.inflight[key]; j != nil {
			return j
		}
	}
	j := &hashJob{fsys: fsys, in: in, done: make(chan struct{})}
	if in.Nlink > 1 {
		h.inflight[key] = j
	}
	h.jobs <- j
	return j
}

// queue appends r (waiting for job, if any) and adds what is ready.
func (h *hasher) queue(r *TimelineRow, job *hashJob, add func(*TimelineRow) error) error {
	if job == nil && len(h.pending) == 0 {
		return add(r)
	}
	h.pending = append(h.pending, pendingEntry{r, job})
	return h.drain(false, add)
}

// drain adds the queued entries whose digests are in, in order; with all
// (or a full queue) it waits for them.
func (h *hasher) drain(all bool, add func(*TimelineRow) error) error {
	for len(h.pending) > 0 {
		e := h.pending[0]
		if j := e.job; j != nil {
			if all || len(h.pending) >= maxHashPending {
				<-j.done
			} else {
				select {
				case <-j.done:
				default:
					return nil
				}
			}
			if j.err != nil {
				h.pending = nil
				return fmt.Errorf("%s: %w", e.r.Path, j.err)
			}
			e.r.SHA256, e.r.MD5, e.r.SHA1, e.r.HashOmitted = j.d.SHA256, j.d.MD5, j.d.SHA1, j.omitted
			if j.in != nil && j.in.Nlink > 1 && j.omitted == "" {
				key := inodeKey{j.fsys, j.in.Ino}
				delete(h.inflight, key)
				if len(h.cache) < maxHashCache {
					h.cache[key] = j.d
				}
			}
		}
		h.pending[0] = pendingEntry{}
		h.pending = h.pending[1:]
		if err := add(e.r); err != nil {
			return err
		}
	}
	h.pending = h.pending[:0]
	return nil
}
