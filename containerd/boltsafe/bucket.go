package boltsafe

import (
	"slices"
	"strings"
)

// Bucket is an in-memory copy of one bbolt bucket. All methods are safe on
// a nil *Bucket, which behaves as an empty bucket, so lookups along a path
// of optional buckets need no checks.
type Bucket struct {
	values   map[string][]byte
	buckets  map[string]*Bucket
	sequence uint64
}

func newBucket(seq uint64) *Bucket {
	return &Bucket{values: map[string][]byte{}, buckets: map[string]*Bucket{}, sequence: seq}
}

// Get returns the value stored under key, or nil.
func (b *Bucket) Get(key string) []byte {
	if b == nil {
		return nil
	}
	return b.values[key]
}

// Has reports whether key holds a value (not a bucket).
func (b *Bucket) Has(key string) bool {
	if b == nil {
		return false
	}
	_, ok := b.values[key]
	return ok
}

// Bucket returns the nested bucket at path, or nil.
func (b *Bucket) Bucket(path ...string) *Bucket {
	for _, p := range path {
		if b == nil {
			return nil
		}
		b = b.buckets[p]
	}
	return b
}

// Keys returns the keys holding values, in bbolt (byte) order.
func (b *Bucket) Keys() []string {
	if b == nil {
		return nil
	}
	return sortedKeys(b.values)
}

// Buckets returns the names of the nested buckets, in bbolt (byte) order.
func (b *Bucket) Buckets() []string {
	if b == nil {
		return nil
	}
	return sortedKeys(b.buckets)
}

// Sequence returns the bucket's sequence number (bbolt NextSequence state).
func (b *Bucket) Sequence() uint64 {
	if b == nil {
		return 0
	}
	return b.sequence
}

// Strings returns the bucket's values as strings (a containerd labels
// bucket), or nil when the bucket is absent or empty.
func (b *Bucket) Strings() map[string]string {
	if b == nil || len(b.values) == 0 {
		return nil
	}
	m := make(map[string]string, len(b.values))
	for k, v := range b.values {
		m[k] = string(v)
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
