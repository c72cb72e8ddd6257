package vmdk

import (
	"fmt"
	"strconv"
	"strings"
)

// descriptor is a parsed VMDK text descriptor.
type descriptor struct {
	createType string
	parentCID  string
	parentHint string // parentFileNameHint
	extents    []extentLine
}

// extentLine is one line of the extent description:
//
//	ACCESS SIZE TYPE ["FILENAME" [OFFSET]]
type extentLine struct {
	access  string // RW, RDONLY, NOACCESS
	sectors int64
	typ     string // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, ...
	file    string
	offset  int64 // sectors, FLAT only
	at      int64 // byte offset of the line in the descriptor
}

// parseDescriptor parses descriptor text. Unknown keys (the disk database,
// ddb.*) are ignored.
func parseDescriptor(text string) (*descriptor, error) {
	d := &descriptor{}
	at := int64(0)
	for raw := range strings.SplitSeq(text, "\n") {
		lineAt := at
		at += int64(len(raw)) + 1
		line := strings.TrimSpace(strings.TrimRight(raw, "\r\x00"))
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "RW", "RDONLY", "NOACCESS":
			e, err := parseExtentLine(line, lineAt)
			if err != nil {
				return nil, err
			}
			if len(d.extents) >= maxExtents {
				return nil, &FormatError{Struct: "descriptor", Offset: lineAt, Msg: fmt.Sprintf("more than %d extents", maxExtents)}
			}
			d.extents = append(d.extents, e)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue // not a setting: VMware ignores such lines too
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		switch strings.TrimSpace(key) {
		case "createType":
			d.createType = value
		case "parentCID":
			d.parentCID = value
		case "parentFileNameHint":
			d.parentHint = value
		}
	}
	return d, nil
}

func parseExtentLine(line string, at int64) (extentLine, error) {
	bad := func(msg string) (extentLine, error) {
		return extentLine{}, &FormatError{Struct: "descriptor extent line", Offset: at, Msg: fmt.Sprintf("%s: %q", msg, truncate(line, 120))}
	}
	e := extentLine{at: at}
	rest := line
	var f string
	f, rest = nextField(rest)
	e.access = f
	f, rest = nextField(rest)
	n, err := strconv.ParseInt(f, 10, 64)
	if err != nil || n <= 0 || n > maxExtentSectors {
		return bad("bad size in sectors")
	}
	e.sectors = n
	e.typ, rest = nextField(rest)
	if e.typ == "" {
		return bad("no extent type")
	}
	rest = strings.TrimSpace(rest)
	if e.typ == "ZERO" {
		if rest != "" {
			return bad("ZERO extent with a file name")
		}
		return e, nil
	}
	if !strings.HasPrefix(rest, `"`) {
		return bad("no quoted file name")
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return bad("unterminated file name")
	}
	e.file, rest = rest[1:1+end], strings.TrimSpace(rest[2+end:])
	if rest != "" {
		f, rest = nextField(rest)
		off, err := strconv.ParseInt(f, 10, 64)
		if err != nil || off < 0 || off > maxExtentSectors || strings.TrimSpace(rest) != "" {
			return bad("bad offset")
		}
		e.offset = off
	}
	return e, nil
}

func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
