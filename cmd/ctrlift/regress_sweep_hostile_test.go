//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/export"
	"github.com/ctrlift/ctrlift/internal/hostile"
)

// Found by the hostile-input sweep (seed 2, variant 1774, class
// ext4-inode): five flipped bits made a 1-block file in a container's
// writable layer claim 8 GiB, and `diff` spent 16 s hashing the zeros.
// diff and export's manifest now hash at most 1 GiB of holes and say why
// a file was not hashed.
func TestDiffForgedSize(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/example/wordpress-node.raw.zst", hostile.KindContainerd)
	const upper = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs/"
	in, err := b.Lookup(upper + "tmp/.wpc")
	if err != nil {
		t.Fatal(err)
	}
	v := hostile.NewVariant(2, 1774, "ext4-inode", b)
	hostile.SetInodeSize(v, in, 8<<30)
	p := v.WriteTemp(t)
	const ref = "blog/wordpress-6d8f7b9c5-q2lzx/wordpress"
	out, errOut, err := run(t, "diff", "-o", "jsonl", "-i", p, ref)
	if err != nil {
		t.Fatal(err, errOut)
	}
	var found bool
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r export.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Path == "/tmp/.wpc" {
			found = true
			if r.Size == nil || *r.Size != 8<<30 || r.SHA256 != "" || !strings.HasPrefix(r.SHA256Omitted, "holes past the hashing budget") {
				t.Errorf("diff row %s", l)
			}
		} else if r.Type == "file" && r.SHA256 == "" {
			t.Errorf("%s lost its digest: %s", r.Path, l)
		}
	}
	if !found {
		t.Errorf("diff does not list /tmp/.wpc:\n%s", out)
	}
}

// Found by the hostile-input sweep (seed 2, variant 1045, class
// containerd-values): flipped bytes in a container's updatedat gave a time
// in year 10000+, and `list containers -o json` failed with encoding/json's
// "Time.MarshalJSON: year outside of range [0,9999]", naming no record.
// Such a time is now a warning naming the record, and shown as unset.
func TestListTimeOutOfRange(t *testing.T) {
	b := hostile.FixtureBase(t, "testdata/images/example/wordpress-node.raw.zst", hostile.KindContainerd)
	const id = "eed0799779d813328a9dc977731a0a053d02e317873d58ea5f6dff984d40b548"
	far, err := time.Date(12026, 11, 27, 9, 0, 0, 0, time.UTC).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v := hostile.NewVariant(2, 1045, "containerd-values", b)
	if err := hostile.SetMetaValue(v, far, "updatedat", "v1", "k8s.io", "containers", id); err != nil {
		t.Fatal(err)
	}
	p := v.WriteTemp(t)
	for _, args := range [][]string{
		{"list", "containers", "--all", "-o", "json", "-i", p},
		{"info", "container", "-o", "json", "-i", p, id},
	} {
		out, errOut, err := run(t, args...)
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, errOut)
			continue
		}
		if !json.Valid([]byte(out)) || !strings.Contains(out, id) {
			t.Errorf("%v: output is not JSON naming the container", args)
		}
		if !strings.Contains(errOut, "containers/"+id) || !strings.Contains(errOut, "updatedat: year 12026 out of range") {
			t.Errorf("%v: no warning naming the record:\n%s", args, errOut)
		}
	}
}
