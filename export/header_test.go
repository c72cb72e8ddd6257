package export

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// renderStd is what tar.Writer writes for hdr.
func renderStd(t *testing.T, hdr *tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := *hdr
	if err := tar.NewWriter(&buf).WriteHeader(&h); err != nil {
		t.Fatalf("tar.Writer refuses %+v: %v", hdr, err)
	}
	return buf.Bytes()
}

// TestHeaderMatchesArchiveTar holds appendPAXHeader to archive/tar's
// output, byte for byte, for the headers an export writes: long, non-ASCII
// and non-UTF-8 names, large ids and sizes, times before 1970 and past
// the octal field, xattrs.
func TestHeaderMatchesArchiveTar(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 22))
	names := []string{"./", "etc/", "etc/passwd", "usr/lib/x86_64-linux-gnu/libc.so.6",
		strings.Repeat("d/", 49) + "ab", strings.Repeat("d/", 50) + "abc", strings.Repeat("a", 100), strings.Repeat("a", 101) + "/",
		strings.Repeat("é", 60), "caf\xe9/\xff\xfe", "x/" + strings.Repeat("é/", 60), "dir with space/f"}
	times := []time.Time{time.Unix(1700000000, 0), time.Unix(1700000000, 123456789), time.Unix(-1, 0), time.Unix(-86400*365, 5),
		time.Unix(1<<33, 0), time.Unix(1<<33-1, 999999999), time.Unix(0, 1), time.Unix(1<<34+7, 100)}
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo}
	ids := []int{0, 1000, 1<<21 - 1, 1 << 21, 1<<32 - 1}
	sizes := []int64{0, 1, 511, 1 << 33, 1<<33 - 1, 1 << 40}
	fast := 0
	for i := 0; i < 20000; i++ {
		hdr := &tar.Header{
			Typeflag:   types[rng.IntN(len(types))],
			Name:       names[rng.IntN(len(names))],
			Mode:       int64(rng.IntN(0o10000)),
			Uid:        ids[rng.IntN(len(ids))],
			Gid:        ids[rng.IntN(len(ids))],
			ModTime:    times[rng.IntN(len(times))],
			AccessTime: times[rng.IntN(len(times))],
			ChangeTime: times[rng.IntN(len(times))],
			Format:     tar.FormatPAX,
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			hdr.Size = sizes[rng.IntN(len(sizes))]
			hdr.Name = strings.TrimRight(hdr.Name, "/")
		case tar.TypeDir:
			if !strings.HasSuffix(hdr.Name, "/") {
				hdr.Name += "/"
			}
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Linkname = names[rng.IntN(len(names))]
		case tar.TypeChar, tar.TypeBlock:
			hdr.Devmajor, hdr.Devminor = int64(rng.IntN(4096)), int64(rng.IntN(1<<20))
		}
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo {
			hdr.Name = strings.TrimRight(hdr.Name, "/")
		}
		if rng.IntN(3) == 0 {
			hdr.PAXRecords = map[string]string{}
			for j := rng.IntN(4); j >= 0; j-- {
				v := make([]byte, rng.IntN(300))
				for k := range v {
					v[k] = byte(rng.IntN(256))
				}
				hdr.PAXRecords["SCHILY.xattr."+[]string{"user.a", "security.capability", "trusted.x", "user.é", "system.posix_acl_access"}[rng.IntN(5)]] = string(v)
			}
		}
		if hdr.Name == "" {
			hdr.Name = "f"
		}
		if !fastHeaderOK(hdr) {
			t.Fatalf("header %d not taken by the fast path: %+v", i, hdr)
		}
		fast++
		want := renderStd(t, hdr)
		if got := appendPAXHeader(nil, hdr); !bytes.Equal(got, want) {
			t.Fatalf("header %d (%+v):\ngot  %q\nwant %q", i, hdr, got, want)
		}
	}
	// What the fast path leaves to tar.Writer.
	for _, hdr := range []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "a/", Format: tar.FormatPAX, ModTime: times[0], AccessTime: times[0], ChangeTime: times[0]},
		{Typeflag: tar.TypeReg, Name: "a", Format: tar.FormatPAX, ModTime: times[0]},
		{Typeflag: tar.TypeReg, Name: "a\x00b", Format: tar.FormatPAX, ModTime: times[0], AccessTime: times[0], ChangeTime: times[0]},
		{Typeflag: tar.TypeReg, Name: "a", Format: tar.FormatPAX, ModTime: times[0], AccessTime: times[0], ChangeTime: times[0], PAXRecords: map[string]string{"SCHILY.xattr.a=b": "c"}},
		{Typeflag: tar.TypeChar, Name: "c", Devmajor: 1 << 21, Format: tar.FormatPAX, ModTime: times[0], AccessTime: times[0], ChangeTime: times[0]},
		{Typeflag: tar.TypeReg, Name: "a", Size: -1, Format: tar.FormatPAX, ModTime: times[0], AccessTime: times[0], ChangeTime: times[0]},
	} {
		if fastHeaderOK(hdr) {
			t.Errorf("fast path takes %+v", hdr)
		}
	}
	t.Logf("%d headers compared", fast)
}
