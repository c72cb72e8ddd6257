package containerd

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// SnapshotterDB is the decoded metadata.db of one snapshotter (overlayfs,
// native, gcfs, ...): containerd's snapshots/storage schema.
type SnapshotterDB struct {
	Info      boltsafe.Info
	Snapshots map[string]*SnapshotRecord // by name (<ns>/<seq>/<key>)
	Names     []string                   // the names in bbolt order
	Parents   []ParentLink               // v1/parents index
	Warnings  []string
	byID      map[uint64]string
}

// SnapshotRecord is one entry of v1/snapshots.
type SnapshotRecord struct {
	Name      string
	ID        uint64
	Kind      SnapshotKind
	Parent    string // parent's name in the same database
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
	Size      int64
	Inodes    int64
}

// ParentLink is one entry of v1/parents: child ChildID has parent ParentID.
type ParentLink struct {
	ParentID uint64
	ChildID  uint64
	Child    string
}

// ReadSnapshotterDB decodes a snapshotter's metadata.db from its bytes.
func ReadSnapshotterDB(data []byte) (*SnapshotterDB, error) {
	db, err := boltsafe.Read(data)
	if err != nil {
		return nil, err
	}
	return DecodeSnapshotterDB(db)
}

// DecodeSnapshotterDB decodes an already read snapshotter metadata.db.
func DecodeSnapshotterDB(db *boltsafe.DB) (*SnapshotterDB, error) {
	v1 := db.Root.Bucket("v1")
	if v1 == nil {
		return nil, ErrNoV1
	}
	s := &SnapshotterDB{Info: db.Info, Snapshots: map[string]*SnapshotRecord{}, byID: map[uint64]string{}}
	d := decoder{warnings: &s.Warnings}
	snaps := v1.Bucket("snapshots")
	for _, name := range snaps.Buckets() {
		b := snaps.Bucket(name)
		where := "v1/snapshots/" + name
		r := &SnapshotRecord{
			Name:      name,
			Parent:    string(b.Get("parent")),
			CreatedAt: d.timeAt(b, "createdat", where),
			UpdatedAt: d.timeAt(b, "updatedat", where),
			Labels:    b.Bucket("labels").Strings(),
			Kind:      "unknown",
		}
		id, ok := d.uvarint(b, "id", where)
		if !ok {
			d.warn("%s: no snapshot id", where)
		}
		r.ID = id
		if k := b.Get("kind"); len(k) == 1 {
			r.Kind = kindName(uint64(k[0]))
		} else {
			d.warn("%s: kind %x is not one byte", where, k)
		}
		r.Size, _ = d.varint(b, "size", where)
		r.Inodes, _ = d.varint(b, "inodes", where)
		if other, dup := s.byID[id]; dup && ok {
			d.warn("%s: id %d is also used by %s", where, id, other)
		} else if ok {
			s.byID[id] = name
		}
		s.Snapshots[name] = r
		s.Names = append(s.Names, name)
	}
	parents := v1.Bucket("parents")
	for _, k := range parents.Keys() {
		pid, n := binary.Uvarint([]byte(k))
		if n <= 0 || n >= len(k) || k[n] != 0 {
			d.warn("v1/parents: malformed key %x", k)
			continue
		}
		cid, m := binary.Uvarint([]byte(k[n+1:]))
		if m <= 0 || n+1+m != len(k) {
			d.warn("v1/parents: malformed key %x", k)
			continue
		}
		s.Parents = append(s.Parents, ParentLink{ParentID: pid, ChildID: cid, Child: string(parents.Get(k))})
	}
	return s, nil
}

// splitName splits a snapshotter name "<ns>/<seq>/<key>" into namespace and
// key. Names of other shapes (e.g. remote snapshotters' "sha256:...")
// return ok false.
func splitName(name string) (ns, key string, ok bool) {
	ns, rest, ok1 := strings.Cut(name, "/")
	seq, key, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || ns == "" || key == "" || seq == "" {
		return "", name, false
	}
	for _, c := range seq {
		if c < '0' || c > '9' {
			return "", name, false
		}
	}
	return ns, key, true
}

// findName returns the snapshotter name of meta.db key in namespace ns when
// meta.db does not say it: the unique "<ns>/<seq>/<key>" entry, else key
// itself when the snapshotter stores it verbatim.
func (s *SnapshotterDB) findName(ns, key string) (string, error) {
	var found []string
	for _, name := range s.Names {
		if n, k, ok := splitName(name); ok && n == ns && k == key {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if _, ok := s.Snapshots[key]; ok {
			return key, nil
		}
		return "", fmt.Errorf("snapshot %q of namespace %q is not in the snapshotter's metadata.db", key, ns)
	}
	return "", fmt.Errorf("snapshot %q of namespace %q has several entries in the snapshotter's metadata.db: %s", key, ns, strings.Join(found, ", "))
}
