package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable escapes what a terminal would act on in a message that may
// carry text from the evidence (file names, labels, keys): control
// characters, invalid UTF-8 and invisible format characters such as bidi
// overrides. A name holding "\n" or ESC sequences could otherwise forge
// lines of output or rewrite the screen. A newline followed by two spaces
// starts one of ctrlift's own indented detail lines and is kept.
func printable(s string) string { return escapeText(s, true) }

// printableCell is printable for one cell of a table or one line of a
// listing: every newline is escaped.
func printableCell(s string) string { return escapeText(s, false) }

func escapeText(s string, details bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n' && details && strings.HasPrefix(s[i+1:], "  "):
			b.WriteByte('\n')
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
