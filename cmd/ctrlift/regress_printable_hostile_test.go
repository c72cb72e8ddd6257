package main

import "testing"

// Found while building the hostile-input sweep: names from the image
// reached stderr raw, so a file named "a\nctrlift: all fine" or holding
// terminal escapes could forge lines of ctrlift's output.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain: inode 12 at byte 4096", "plain: inode 12 at byte 4096"},
		{"etc/a\nctrlift: all fine: x", `etc/a\nctrlift: all fine: x`},
		{"\x1b[2J\x1b[Hclear", `\x1b[2J\x1b[Hclear`},
		{"tab\there\rcr", `tab\there\rcr`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"ünïcödé names stay", "ünïcödé names stay"},
		{"\"web\" matches 2 containers:\n  k8s.io/a\n  k8s.io/b", "\"web\" matches 2 containers:\n  k8s.io/a\n  k8s.io/b"},
		{"nul \x00 byte", `nul \x00 byte`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// In a table cell or a listing line every newline is escaped.
	if got := printableCell("a\n  b\tc"); got != `a\n  b\tc` {
		t.Errorf("printableCell = %q", got)
	}
}
