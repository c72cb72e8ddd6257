package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

const wordpressRef = "blog/wordpress-6d8f7b9c5-q2lzx/wordpress"

func exampleDisk(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "ctrlift-test-cache", "xdg"))
	return filepath.Join(testutil.RepoRoot(t), "testdata", "images", "example", "wordpress-node.raw.zst")
}

// mactime runs TSK's mactime on a body file, the consumer of -o bodyfile;
// the test is skipped without it (Debian: apt-get install sleuthkit).
func mactime(t *testing.T, body string) string {
	t.Helper()
	if _, err := exec.LookPath("mactime"); err != nil {
		t.Skip("mactime not installed (apt-get install sleuthkit)")
	}
	p := filepath.Join(t.TempDir(), "timeline.body")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mactime", "-b", p, "-d", "-z", "UTC")
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mactime: %v\n%s", err, out)
	}
	return string(out)
}

// jsonlRows parses -o jsonl, checking the fields Timesketch requires.
func jsonlRows(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, l)
		}
		for _, f := range []string{"message", "datetime", "timestamp_desc", "data_type"} {
			if s, _ := m[f].(string); s == "" {
				t.Errorf("line %d: no %s: %s", i+1, f, l)
			}
		}
		dt, err := time.Parse(time.RFC3339Nano, m["datetime"].(string))
		if err != nil {
			t.Errorf("line %d: datetime: %v", i+1, err)
		}
		if ts, _ := m["timestamp"].(float64); int64(ts) != dt.UnixMicro() {
			t.Errorf("line %d: timestamp %v is not datetime %s in µs", i+1, m["timestamp"], dt)
		}
		rows = append(rows, m)
	}
	return rows
}

// TestTimelineExample is the acceptance: on the example, the
// wordpress container's timeline shows the web shell's birth (2026-11-27)
// next to its back-dated mtime (2023-11-14) with its layer, in JSON lines,
// CSV and a body file that mactime reads.
func TestTimelineExample(t *testing.T) {
	img := exampleDisk(t)
	out, errOut, err := run(t, "timeline", "-i", img, wordpressRef, "--logs")
	if err != nil {
		t.Fatal(err, errOut)
	}
	rows := jsonlRows(t, out)
	if len(rows) != 378*4+4+8 {
		t.Errorf("%d rows, want 378 entries × 4 times + 4 events + 8 log lines", len(rows))
	}
	var shell []string
	var prev string
	for _, r := range rows {
		if r["datetime"].(string) < prev {
			t.Fatalf("not sorted by time: %s after %s", r["datetime"], prev)
		}
		prev = r["datetime"].(string)
		if r["path"] == "/var/www/html/wp-content/uploads/shell.php" {
			shell = append(shell, r["datetime"].(string)+" "+r["timestamp_desc"].(string)+" "+r["layer"].(string))
		}
	}
	want := []string{
		"2023-11-14T22:13:20.000000000+00:00 Content Modification Time writable",
		"2026-11-27T09:01:35.145649811+00:00 Creation Time writable",
		"2026-11-27T09:01:35.148063525+00:00 Metadata Modification Time writable",
		"2026-11-27T09:01:36.288178444+00:00 Last Access Time writable",
	}
	if !slices.Equal(shell, want) {
		t.Errorf("shell.php:\n%s", strings.Join(shell, "\n"))
	}
	for _, ev := range []string{"container created", "container started", "container finished", "image created", "log line"} {
		if !slices.ContainsFunc(rows, func(r map[string]any) bool { return r["event"] == ev }) {
			t.Errorf("no %q row", ev)
		}
	}

	// CSV: the same rows, the same columns.
	csvOut, _, err := run(t, "timeline", "-q", "-i", img, wordpressRef, "--logs", "-o", "csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 || !slices.Equal(recs[0], timelineColumns[:]) {
		t.Fatalf("csv: %d records, header %v", len(recs), recs[0])
	}
	for i, rec := range recs[1:] {
		if rec[0] != rows[i]["message"] || rec[1] != rows[i]["datetime"] || rec[3] != rows[i]["timestamp_desc"] {
			t.Fatalf("csv row %d differs from jsonl: %v", i, rec[:4])
		}
	}

	// The body file: one row per entry, mactime's view of it.
	body, _, err := run(t, "timeline", "-q", "-i", img, wordpressRef, "-o", "bodyfile", "--hash", "md5")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 378+4 {
		t.Errorf("bodyfile: %d lines, want 378 entries + 4 events", len(lines))
	}
	const shellRow = "|/blog/wordpress-6d8f7b9c5-q2lzx/wordpress/var/www/html/wp-content/uploads/shell.php|675|r/rrw-r--r--|33|33|124|1795770096|1700000000|1795770095|1795770095"
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, shellRow) && len(l) == 32+len(shellRow) }) {
		t.Errorf("bodyfile has no row %s", shellRow)
	}
	mt := mactime(t, body)
	const name = `,r/rrw-r--r--,33,33,675,"/blog/wordpress-6d8f7b9c5-q2lzx/wordpress/var/www/html/wp-content/uploads/shell.php"`
	for _, row := range []string{
		"Tue Nov 14 2023 22:13:20,124,m..." + name,
		"Fri Nov 27 2026 09:01:35,124,..cb" + name,
		"Fri Nov 27 2026 09:01:36,124,.a.." + name,
		`Fri Nov 27 2026 09:01:44,0,macb,-/----------,0,0,0,"/blog/wordpress-6d8f7b9c5-q2lzx/wordpress [container finished, exit code 0: Completed]"`,
	} {
		if !strings.Contains(mt, "\n"+row+"\n") {
			t.Errorf("mactime shows no row %s", row)
		}
	}
	// mactime took every row: each name is in its output.
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 11 {
			t.Fatalf("%d fields: %s", len(f), l)
		}
		if !strings.Contains(mt, `"`+f[1]+`"`) {
			t.Errorf("mactime dropped %s", f[1])
		}
	}
}

// treeTar writes a tar of a tree: two overlay layers under layers/, with
// names a timeline must keep whole (a newline, '|', '%', bytes that are
// not UTF-8), a whiteout and an opaque directory.
func treeTar(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	add := func(h *tar.Header, data string) {
		h.ModTime, h.AccessTime, h.ChangeTime, h.Format = mt, mt.Add(time.Hour), mt.Add(2*time.Hour), tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	dir := func(name string) { add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, "") }
	file := func(name, data string) {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Uid: 33, Gid: 33}, data)
	}
	for _, d := range []string{"layers/", "layers/lower/", "layers/lower/etc/", "layers/lower/dir/", "layers/upper/"} {
		dir(d)
	}
	file("layers/lower/etc/passwd", "root:x:0:0\n")
	file("layers/lower/gone.txt", "deleted above\n")
	file("layers/lower/dir/old", "hidden by the opaque dir\n")
	file("layers/upper/evil\nname|100%.txt", "newline in the name\n")
	file("layers/upper/bad\xffname", "not UTF-8\n")
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "layers/upper/gone.txt"}, "")
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "layers/upper/dir/", Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}, "")
	file("layers/upper/dir/new", "new\n")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "layers/upper/link", Linkname: "target|x"}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tree.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTimelineNames: an entry is one row whatever its name's bytes: a
// newline stays in one CSV field and one body file line (percent-encoded,
// which mactime decodes), bytes that are not UTF-8 are kept exactly in
// path_b64. The input is a tar read by tarfs, the layers named by hand.
func TestTimelineNames(t *testing.T) {
	in := treeTar(t)
	args := []string{"timeline", "-q", "-i", in, "--layer-dirs", "layers/upper:layers/lower"}
	// Merged: /, /bad\xffname, /dir, /dir/new, /etc, /etc/passwd,
	// /evil\nname|100%.txt, /link: 8 entries, 3 times each (tar keeps no
	// creation time).
	out, _, err := run(t, append(args, "-o", "jsonl")...)
	if err != nil {
		t.Fatal(err)
	}
	rows := jsonlRows(t, out)
	if len(rows) != 8*3 {
		t.Fatalf("%d rows, want 24:\n%s", len(rows), out)
	}
	paths := map[string]bool{}
	for _, r := range rows {
		p := r["path"].(string)
		if b, ok := r["path_b64"].(string); ok {
			raw, _ := base64.StdEncoding.DecodeString(b)
			p = string(raw)
		}
		paths[p] = true
	}
	for _, p := range []string{"/evil\nname|100%.txt", "/bad\xffname", "/dir/new", "/link"} {
		if !paths[p] {
			t.Errorf("no rows for %q", p)
		}
	}
	if paths["/gone.txt"] || paths["/dir/old"] {
		t.Errorf("deleted or hidden entries in the merged view: %v", paths)
	}

	csvOut, _, err := run(t, append(args, "-o", "csv")...)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(recs) != 8*3+1 {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
	if !slices.ContainsFunc(recs, func(r []string) bool { return r[16] == "/evil\nname|100%.txt" }) {
		t.Error("csv: the newline name is not one field")
	}

	body, _, err := run(t, append(args, "-o", "bodyfile")...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 8 {
		t.Fatalf("bodyfile: %d lines, want 8:\n%s", len(lines), body)
	}
	for _, want := range []string{"|/evil%0Aname%7C100%25.txt|", "|/bad%FFname|", "|/link -> target%7Cx|"} {
		if !strings.Contains(body, want) {
			t.Errorf("bodyfile has no %s:\n%s", want, body)
		}
	}

	// --changes: the writable layer, the whiteout with its own times.
	changes, _, err := run(t, append(args, "--changes", "-o", "bodyfile")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(changes, "|/gone.txt (deleted)|") || !strings.Contains(changes, "|w/c---------|0|0|0|1700003600|1700000000|1700007200|0\n") {
		t.Errorf("--changes: no whiteout row:\n%s", changes)
	}
	cj, _, err := run(t, append(args, "--changes", "-o", "jsonl")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range jsonlRows(t, cj) {
		want := "added"
		switch r["path"] {
		case "/gone.txt":
			want = "deleted"
		case "/dir":
			want = "modified" // opaque: replaces the image's directory
		case "/":
			want = ""
		}
		if got, _ := r["change"].(string); got != want {
			t.Errorf("%q: change %q, want %q", r["path"], got, want)
		}
	}

	// mactime decodes the names back to their bytes. (It then drops the
	// name holding a newline: its sort key is matched with /(.*)$/, whose
	// '.' stops at a newline; JSON lines and CSV keep it.)
	mt := mactime(t, body)
	for _, want := range []string{"\"/bad\xffname\"", "\"/link -> target|x\"", ",r/rrw-r--r--,33,33,7,\"/etc/passwd\""} {
		if !strings.Contains(mt, want) {
			t.Errorf("mactime shows no %q:\n%s", want, mt)
		}
	}
}

// TestTimelineRefusals: formats and flags are checked before anything is
// read.
func TestTimelineRefusals(t *testing.T) {
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"-o", "table"}, `unknown output format "table" (want jsonl, csv or bodyfile)`},
		{[]string{"--hash", "crc32"}, `unknown hash "crc32"`},
		{[]string{"--layer-dirs", "a:b", "ref"}, "--layer-dirs names the layers"},
	} {
		_, _, err := run(t, append([]string{"timeline", "-i", "/nonexistent"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.err)
		}
	}
}

// TestTimelineEncoders: the hand-written JSON and CSV encoders read back
// as encoding/json and encoding/csv read them, whatever the bytes.
func TestTimelineEncoders(t *testing.T) {
	cases := []string{"", "plain", "quote\"back\\slash", "nl\nreturn\rtab\t", "\x00\x01\x1f\x7f", "bad\xff\xfe utf8",
		"é ✓ 😀", "\u2028\u2029", "<&>", " leading", "\\.", "a,b", `"`, strings.Repeat("x", 5000)}
	for _, c := range cases {
		var got, std string
		if err := json.Unmarshal(appendJSONString(nil, c), &got); err != nil {
			t.Errorf("%q: %v", c, err)
		}
		want, _ := json.Marshal(c)
		json.Unmarshal(want, &std)
		if got != std {
			t.Errorf("json %q: read back %q, encoding/json's %q", c, got, std)
		}
		if string(appendJSONString(nil, c)) != strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want)) {
			t.Errorf("json %q: %s, encoding/json %s", c, appendJSONString(nil, c), want)
		}
	}
	recs, err := csv.NewReader(bytes.NewReader(appendCSV(nil, cases))).ReadAll()
	if err != nil || len(recs) != 1 || len(recs[0]) != len(cases) {
		t.Fatalf("csv: %v %v", recs, err)
	}
	for i, c := range cases {
		if want := strings.ToValidUTF8(c, "\uFFFD"); recs[0][i] != want {
			t.Errorf("csv %q: read back %q", c, recs[0][i])
		}
	}
}

// TestTimelineSelection: POD/NAME of a container that restarted names
// every restart, each with its own log; no REF is what "list containers"
// shows.
func TestTimelineSelection(t *testing.T) {
	img := exampleDisk(t)
	out, _, err := run(t, "timeline", "-q", "-i", img, "wordpress-6d8f7b9c5-q2lzx/apache-exporter", "--logs")
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]map[float64]int{} // container id → restart → lines
	finished := 0
	for _, r := range jsonlRows(t, out) {
		id := r["container_id"].(string)
		if r["event"] == "log line" {
			if logs[id] == nil {
				logs[id] = map[float64]int{}
			}
			logs[id][r["restart"].(float64)]++
		}
		if r["event"] == "container finished" && r["exit_code"] == 2.0 {
			finished++
		}
	}
	want := map[string]map[float64]int{
		"a03b0bde54af5c6071c04fa6bf132324ee1b8eb9a7c2cc08f7de92d96b3431b0": {0: 5},
		"4d9b23b2baa8eccb9d0e638a01cb8bb7a065ba6e29b841de4e1e93d4ad9138cd": {1: 5},
	}
	if !reflect.DeepEqual(logs, want) || finished != 2 {
		t.Errorf("log lines by container and restart: %v; %d exits with 2", logs, finished)
	}
	_, errOut, err := run(t, "timeline", "-i", img, "-o", "bodyfile")
	if err != nil || !strings.Contains(errOut, "2 containers hidden (2 sandboxes)") || !strings.Contains(errOut, " rows, 4 containers") {
		t.Errorf("every listed container: %v\n%s", err, errOut)
	}
}
