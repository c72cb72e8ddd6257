package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctrlift/ctrlift/node"
	"github.com/ctrlift/ctrlift/vfs"
)

// printFlags is the one output layer, as kubectl's PrintFlags: -o names
// the format in every command, validated once before the command runs;
// --no-trunc where a table shortens hex ids.
type printFlags struct {
	format  string
	allowed []string
	noTrunc bool
}

// Formats of listings.
var listFormats = []string{"table", "json", "jsonl"}

// register adds -o with its allowed formats (the first is the default)
// and, for tables that shorten ids, --no-trunc.
func (p *printFlags) register(cmd *cobra.Command, allowed []string, trunc bool) {
	p.allowed = allowed
	cmd.Flags().StringVarP(&p.format, "output", "o", allowed[0], "output format: "+strings.Join(allowed, ", "))
	if trunc {
		cmd.Flags().BoolVar(&p.noTrunc, "no-trunc", false, "show full ids and digests in tables")
	}
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := p.check(); err != nil {
			return err
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

func (p *printFlags) check() error {
	for _, a := range p.allowed {
		if p.format == a {
			return nil
		}
	}
	return &node.UnknownFormatError{Format: p.format, Allowed: p.allowed}
}

// short shortens a hex id or digest for a table, unless --no-trunc.
func (p *printFlags) short(id string) string {
	if p.noTrunc {
		return id
	}
	if algo, hex, ok := strings.Cut(id, ":"); ok && algo == "sha256" {
		if s := node.ShortID(hex); s != hex {
			return algo + ":" + s
		}
		return id
	}
	return node.ShortID(id)
}

// printList writes rows as a table, a JSON array or JSON lines.
func printList[T any](w io.Writer, p *printFlags, rows []T, header []string, cells func(T) []string) error {
	switch p.format {
	case "json":
		if rows == nil {
			rows = []T{}
		}
		return newJSON(w, true).Encode(rows)
	case "jsonl":
		enc := newJSON(w, false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		c := cells(r)
		for i := range c {
			if c[i] == "" {
				c[i] = "-"
			}
			c[i] = printableCell(strings.NewReplacer("\t", " ", "\n", " ").Replace(c[i]))
		}
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	return tw.Flush()
}

// printOne writes one object as indented JSON or one JSON line.
func printOne(w io.Writer, p *printFlags, v any) error {
	return newJSON(w, p.format != "jsonl").Encode(v)
}

// lsMode is a mode as ls -l prints it: "drwxr-xr-x", "-rwsr-xr-x",
// "lrwxrwxrwx", "crw-rw-rw-".
func lsMode(mode uint32) string {
	var b [10]byte
	switch mode & vfs.TypeMask {
	case vfs.TypeDir:
		b[0] = 'd'
	case vfs.TypeSymlink:
		b[0] = 'l'
	case vfs.TypeChar:
		b[0] = 'c'
	case vfs.TypeBlock:
		b[0] = 'b'
	case vfs.TypeFIFO:
		b[0] = 'p'
	case vfs.TypeSocket:
		b[0] = 's'
	case vfs.TypeRegular:
		b[0] = '-'
	default:
		b[0] = '?'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		} else {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b[:])
}

// when is a time for a table: RFC 3339 in UTC, "" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// whenNs is a time with nanoseconds for file tables.
func whenNs(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// htmlUnescaper writes JSON with the \u0026, \u003c and \u003e escapes
// of strings turned back into &, < and >. json.Encoder writes each value
// with one Write, so a value is never split across calls.
type htmlUnescaper struct{ w io.Writer }

func (h htmlUnescaper) Write(p []byte) (int, error) {
	if _, err := h.w.Write(unescapeHTML(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// unescapeHTML replaces the escapes \u0026, \u003c and \u003e (any case)
// in JSON text by the characters they stand for; an escaped backslash
// before "u0026" is left alone.
func unescapeHTML(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u00`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch strings.ToLower(string(b[i+2 : i+6])) {
			case "0026":
				out = append(out, '&')
				i += 5
				continue
			case "003c":
				out = append(out, '<')
				i += 5
				continue
			case "003e":
				out = append(out, '>')
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1]) // any other escape, kept whole
		i++
	}
	return out
}
