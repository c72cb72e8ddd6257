package export

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrlift/ctrlift/image/dirfs"
)

// TestRecordNames: a name or link target that is not UTF-8 is shown with
// its bad bytes escaped (never U+FFFD) and given exactly in *_b64.
func TestRecordNames(t *testing.T) {
	dir := t.TempDir()
	name := "web\xffshell\xc3.php"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
		t.Skipf("the host filesystem refuses the name: %v", err)
	}
	if err := os.Symlink("../\xfe", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	d, err := dirfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tt := range []struct{ name, path, b64, target, targetB64 string }{
		{name, `/web\xffshell\xc3.php`, base64.StdEncoding.EncodeToString([]byte("/" + name)), "", ""},
		{"link", "/link", "", `../\xfe`, base64.StdEncoding.EncodeToString([]byte("../\xfe"))},
	} {
		in, err := d.Lookup(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRecord("/"+tt.name, in, d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), "\ufffd") || strings.Contains(string(b), `\ufffd`) {
			t.Errorf("%q: U+FFFD in %s", tt.name, b)
		}
		target := ""
		if r.Target != nil {
			target = *r.Target
		}
		if r.Path != tt.path || r.PathB64 != tt.b64 || target != tt.target || r.TargetB64 != tt.targetB64 {
			t.Errorf("%q: path %q b64 %q target %q b64 %q", tt.name, r.Path, r.PathB64, target, r.TargetB64)
		}
	}
	if got := EscapeInvalid("ok é \xff"); got != `ok é \xff` {
		t.Errorf("EscapeInvalid: %q", got)
	}
}
