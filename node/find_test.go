package node

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/layers"
)

// Find on the example node: the web shell by digest (both of its
// hardlinked names), by path and name, what the attacker wrote by time,
// file capabilities, images.
func TestFind(t *testing.T) {
	n := openExample(t)
	const (
		shell = "/var/www/html/wp-content/uploads/shell.php"
		thumb = "/var/www/html/wp-content/uploads/2024/01/thumb-150x150.php"
	)
	attack := time.Date(2026, 11, 27, 9, 1, 34, 0, time.UTC)
	size := func(n int64) *int64 { return &n }
	for _, tt := range []struct {
		name string
		opt  FindOptions
		want []string // tree layer path
	}{
		{"sha256", FindOptions{SHA256: []string{shellSHA256}}, []string{
			"wordpress overlayfs/10 " + thumb,
			"wordpress overlayfs/10 " + shell,
		}},
		{"sha256 with prefix, upper case", FindOptions{SHA256: []string{"SHA256:" + strings.ToUpper(shellSHA256)}, List: ListOptions{All: true}}, []string{
			"wordpress overlayfs/10 " + thumb,
			"wordpress overlayfs/10 " + shell,
		}},
		{"md5 or sha256", FindOptions{MD5: []string{shellMD5}, SHA256: []string{"118f636569b29bfc777b645136678b83027bbe55e58686a026ba62bf10ee4d59"}}, []string{
			"wordpress overlayfs/10 " + thumb,
			"wordpress overlayfs/10 " + shell,
		}},
		{"deleted file is not found in the container", FindOptions{Path: "/var/log/apache2/access.log"}, nil},
		{"but in its image", FindOptions{Images: true, Path: "/var/log/apache2/access.log"}, []string{wordpressImg + " overlayfs/5 /var/log/apache2/access.log"}},
		{"glob at any depth", FindOptions{Path: "uploads/*.php"}, []string{"wordpress overlayfs/10 " + shell}},
		{"glob across directories", FindOptions{Path: "/var/www/**/[st]*.php", Refs: []string{"wordpress"}}, []string{
			"wordpress overlayfs/10 " + thumb,
			"wordpress overlayfs/10 " + shell,
		}},
		{"name", FindOptions{Name: `^thumb-\d+x\d+\.php$`}, []string{"wordpress overlayfs/10 " + thumb}},
		{"written during the attack", FindOptions{Newer: attack, Types: []string{"file"}, Refs: []string{"pod:blog/wordpress-6d8f7b9c5-q2lzx"}}, []string{
			"wordpress overlayfs/10 /etc/apache2/apache2.conf",
			"wordpress overlayfs/10 /tmp/.wpc",
			"wordpress overlayfs/10 /var/spool/cron/crontabs/www-data",
			"wordpress overlayfs/10 /var/www/html/wp-content/cache/page-home.html",
			"wordpress overlayfs/10 /var/www/html/wp-content/uploads/.htaccess",
		}},
		// The shell's mtime is back-dated; its creation time is not.
		{"created during the attack", FindOptions{Newer: attack, TimeField: "crtime", Path: "*.php"}, []string{
			"wordpress overlayfs/10 " + thumb,
			"wordpress overlayfs/10 " + shell,
		}},
		{"older and size range", FindOptions{Older: attack, MinSize: 12769, MaxSize: size(12769), Images: true}, []string{wordpressImg + " overlayfs/5 /var/log/apache2/access.log"}},
		{"capabilities", FindOptions{Caps: true}, []string{"wordpress overlayfs/4 /usr/local/bin/apache2-foreground"}},
		{"setuid", FindOptions{SetID: true, List: ListOptions{All: true}}, nil},
		{"every container's base layer", FindOptions{Path: "/bin/busybox", Exec: true}, []string{
			"apache-exporter overlayfs/1 /bin/busybox",
			"apache-exporter overlayfs/1 /bin/busybox",
			"mysql overlayfs/1 /bin/busybox",
			"wordpress overlayfs/1 /bin/busybox",
		}},
		{"sandboxes with --all", FindOptions{Path: "/bin/busybox", List: ListOptions{All: true}, Refs: nil}, []string{
			"15699113dcd7 overlayfs/1 /bin/busybox",
			"apache-exporter overlayfs/1 /bin/busybox",
			"apache-exporter overlayfs/1 /bin/busybox",
			"mysql overlayfs/1 /bin/busybox",
			"b9803ff4c543 overlayfs/1 /bin/busybox",
			"wordpress overlayfs/1 /bin/busybox",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := n.Find(tt.opt, func(h FindHit) error {
				name := h.ContainerName
				switch {
				case h.ChainID != "":
					name = h.Image
				case name == "":
					name = ShortID(h.ContainerID)
				}
				got = append(got, name+" "+h.Layer+" "+h.Path)
				if h.Type == "file" && len(h.SHA256) != 64 {
					t.Errorf("%s: no sha256", h.Path)
				}
				if (len(tt.opt.MD5) > 0) != (h.MD5 != "") {
					t.Errorf("%s: md5 %q", h.Path, h.MD5)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}

	// The hit's context, and the callback's error stops the search.
	stop := errors.New("enough")
	var hits []FindHit
	err := n.Find(FindOptions{SHA256: []string{shellSHA256}}, func(h FindHit) error { hits = append(hits, h); return stop })
	if err != stop || len(hits) != 1 {
		t.Fatalf("%v, %d hits", err, len(hits))
	}
	h := hits[0]
	if h.Namespace != "k8s.io" || h.ContainerID != wordpressID || h.Pod != "blog/wordpress-6d8f7b9c5-q2lzx" || h.Image != wordpressImg ||
		h.ChainID != "" || h.SHA256 != shellSHA256 || h.UID != 33 || h.Nlink != 2 {
		t.Errorf("%+v", h)
	}
}

// Options that cannot be met are refused before anything is read.
func TestFindCheck(t *testing.T) {
	neg := int64(-1)
	for _, tt := range []struct {
		opt  FindOptions
		want string
	}{
		{FindOptions{SHA256: []string{"abc"}}, `sha256 "abc": want 64 hex digits`},
		{FindOptions{MD5: []string{shellSHA256}}, "want 32 hex digits"},
		{FindOptions{Types: []string{"f"}}, `unknown type "f"`},
		{FindOptions{Path: "[a"}, "[ without ]"},
		{FindOptions{Name: "("}, "name pattern"},
		{FindOptions{MinSize: 10, MaxSize: &neg}, "no size is at least 10 and at most -1 bytes"},
		{FindOptions{Newer: time.Unix(10, 0), Older: time.Unix(5, 0)}, "no time is at or after"},
		{FindOptions{TimeField: "btime"}, `unknown time field "btime"`},
		{FindOptions{Images: true, Refs: []string{"wordpress"}}, "references name containers"},
		{FindOptions{Path: "/a/**/b?[!x]"}, ""},
	} {
		err := tt.opt.Check()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.opt, err, tt.want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		glob, path string
		match      bool
	}{
		{"/etc/passwd", "/etc/passwd", true},
		{"/etc/*", "/etc/passwd", true},
		{"/etc/*", "/etc/ssl/certs", false},
		{"/etc/**", "/etc/ssl/certs", true},
		{"/var/**/x.php", "/var/x.php", true},
		{"/var/**/x.php", "/var/www/html/x.php", true},
		{"x.php", "/var/www/x.php", true},
		{"x.php", "/var/www/ax.php", false},
		{"uploads/*.php", "/var/www/uploads/a.php", true},
		{"uploads/*.php", "/var/www/uploads/2024/a.php", false},
		{"/tmp/.???", "/tmp/.wpc", true},
		{"/tmp/[.]w*", "/tmp/.wpc", true},
		{"/tmp/[!.]*", "/tmp/.wpc", false},
		{"/tmp/[]a]", "/tmp/]", true},
		{`/tmp/\*`, "/tmp/*", true},
		{`/tmp/\*`, "/tmp/a", false},
		{"/a+b(c)", "/a+b(c)", true},
		{"/caf\xe9", "/caf\xe9", true},
	} {
		re, err := globRegexp(tt.glob)
		if err != nil {
			t.Errorf("%q: %v", tt.glob, err)
			continue
		}
		if got := re.MatchString(tt.path); got != tt.match {
			t.Errorf("%q on %q: %v, want %v", tt.glob, tt.path, got, tt.match)
		}
	}
}

// A file is read once however many containers share its layer, and a
// hard-linked file once for all its names.
func TestFindReadsOnce(t *testing.T) {
	n := openExample(t)
	opt := FindOptions{SHA256: []string{shellSHA256}, List: ListOptions{All: true}}
	var hits int
	s, err := n.find(opt, func(FindHit) error { hits++; return nil })
	if err != nil || hits != 2 {
		t.Fatal(err, hits)
	}
	// The files there are: every regular file of every container's
	// merged view, each (layer, inode) once.
	type file struct {
		dir string
		ino uint64
	}
	files, names := map[file]bool{}, 0
	l, _ := n.Containers(opt.List)
	for i := range l.Shown {
		ls, err := n.Layers(&l.Shown[i], LayerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := layers.New(ls, layers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m.Walk(func(_ string, e *layers.Entry) error {
			if e.IsRegular() {
				files[file{ls[e.Layer].Dir, e.Ino}] = true
				names++
			}
			return nil
		})
	}
	if len(l.Shown) != 6 || s.read != len(files) || names <= len(files) {
		t.Errorf("%d containers: %d files read; %d files under %d names", len(l.Shown), s.read, len(files), names)
	}
}
