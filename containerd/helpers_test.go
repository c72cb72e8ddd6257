package containerd

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image"
	"github.com/ctrlift/ctrlift/image/ext4"
	"github.com/ctrlift/ctrlift/internal/testutil"
)

func shared(t testing.TB) string { return testutil.Shared(t) }

func realworld(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shared(t), "realworld", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cosFS opens the STATE partition of a cos-node fixture disk ("cos-node" or
// "cos-node-live") through the real path: zstd image -> GPT -> ext4. The
// decompressed disk is cached in os.TempDir()/ctrlift-test-cache/ctrlift (5 GiB
// sparse, ~130 MiB allocated) so later runs skip the 15 s decompression.
func cosFS(t testing.TB, name string) fs.FS {
	t.Helper()
	zst := filepath.Join(shared(t), "fixtures", "cos-node", name+".raw.zst")
	if _, err := os.Stat(zst); err != nil {
		t.Skipf("fixture not available: %v", err)
	}
	d, err := image.Open(zst, image.Options{CacheDir: filepath.Join(os.TempDir(), "ctrlift-test-cache", "ctrlift")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	p, err := d.Select("")
	if err != nil {
		t.Fatal(err)
	}
	e, err := ext4.NewReader(p.Reader(), p.Size)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func loadCOS(t testing.TB, name string) *State {
	t.Helper()
	fsys := cosFS(t, name)
	root, err := FindRoot(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	if root != "var/lib/containerd" {
		t.Errorf("root = %q", root)
	}
	s, err := Load(fsys, root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func expectedPath(t testing.TB, rel string) string {
	return filepath.Join(shared(t), "fixtures", "cos-node", rel)
}

// table parses a `ctr ... ls` listing: columns start where the header's
// words start. Tab-separated listings (ctr content ls) are split on tabs.
func table(t testing.TB, rel string) []map[string]string {
	t.Helper()
	f, err := os.Open(expectedPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("%s: empty", rel)
	}
	header := sc.Text()
	var rows []map[string]string
	if strings.Contains(header, "\t") {
		cols := strings.Fields(header)
		for sc.Scan() {
			var vals []string
			for _, v := range strings.Split(sc.Text(), "\t") {
				if v != "" {
					vals = append(vals, v)
				}
			}
			row := map[string]string{}
			for i, c := range cols {
				if i < len(vals) {
					row[c] = vals[i]
				}
			}
			rows = append(rows, row)
		}
		return rows
	}
	type col struct {
		name  string
		start int
	}
	var cols []col
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(header) && header[j] != ' ' {
			j++
		}
		cols = append(cols, col{header[i:j], i})
		i = j
	}
	for sc.Scan() {
		line := sc.Text()
		row := map[string]string{}
		for k, c := range cols {
			end := len(line)
			if k+1 < len(cols) && cols[k+1].start < end {
				end = cols[k+1].start
			}
			if c.start < end {
				row[c.name] = strings.TrimSpace(line[c.start:end])
			}
		}
		rows = append(rows, row)
	}
	return rows
}
