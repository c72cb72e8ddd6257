package lvm

import (
	"fmt"
	"strconv"
)

// ValueKind is the type of a metadata value.
type ValueKind int

const (
	KindInt ValueKind = iota
	KindString
	KindArray
	KindSection
)

func (k ValueKind) String() string {
	switch k {
	case KindInt:
		return "number"
	case KindString:
		return "string"
	case KindArray:
		return "array"
	case KindSection:
		return "section"
	}
	return "ValueKind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one value of LVM's text metadata: a number, a string, an array
// of numbers and strings, or a section of named values.
type Value struct {
	Kind    ValueKind
	Int     int64
	Str     string
	Array   []Value
	Section *Section
}

// Section is a `name { ... }` block: its entries in file order.
type Section struct {
	Names  []string
	Values []Value
}

// Get returns the entry called name.
func (s *Section) Get(name string) (Value, bool) {
	if s == nil {
		return Value{}, false
	}
	for i, n := range s.Names {
		if n == name {
			return s.Values[i], true
		}
	}
	return Value{}, false
}

// Sub returns the section called name, nil if there is none.
func (s *Section) Sub(name string) *Section {
	v, ok := s.Get(name)
	if !ok || v.Kind != KindSection {
		return nil
	}
	return v.Section
}

// ParseText parses LVM2's text metadata (the format of vgcfgbackup files
// and of the metadata areas): `name = value` and `name { ... }` entries,
// numbers, double-quoted strings, arrays, # comments. It stops at the
// first NUL (the metadata area pads the text with NULs). Errors carry the
// byte offset into text.
func ParseText(text []byte) (*Section, error) {
	if len(text) > maxMetadataText {
		return nil, &FormatError{Struct: "metadata text", Offset: -1, Msg: fmt.Sprintf("%d bytes, more than %d", len(text), maxMetadataText)}
	}
	for i, c := range text {
		if c == 0 {
			text = text[:i]
			break
		}
	}
	p := &parser{text: text}
	root, err := p.section(0, true)
	if err != nil {
		return nil, err
	}
	return root, nil
}

type parser struct {
	text   []byte
	pos    int
	values int
}

func (p *parser) errorf(format string, args ...any) error {
	return &FormatError{Struct: "metadata text", Offset: int64(p.pos), Msg: fmt.Sprintf(format, args...)}
}

// skip passes whitespace and comments.
func (p *parser) skip() {
	for p.pos < len(p.text) {
		switch c := p.text[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.text) && p.text[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+' || c == '-'
}

// section reads entries up to the closing brace (or the end, at the top).
func (p *parser) section(depth int, top bool) (*Section, error) {
	if depth > maxDepth {
		return nil, p.errorf("sections nested deeper than %d", maxDepth)
	}
	s := &Section{}
	for {
		p.skip()
		if p.pos >= len(p.text) {
			if !top {
				return nil, p.errorf("section not closed before the end of the text")
			}
			return s, nil
		}
		if p.text[p.pos] == '}' {
			if top {
				return nil, p.errorf("'}' without a section to close")
			}
			p.pos++
			return s, nil
		}
		start := p.pos
		for p.pos < len(p.text) && isIdent(p.text[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return nil, p.errorf("expected a name, found %q", p.text[p.pos])
		}
		name := string(p.text[start:p.pos])
		p.skip()
		if p.pos >= len(p.text) {
			return nil, p.errorf("%s: no value before the end of the text", name)
		}
		if p.values++; p.values > maxValues {
			return nil, p.errorf("more than %d values", maxValues)
		}
		switch p.text[p.pos] {
		case '{':
			p.pos++
			sub, err := p.section(depth+1, false)
			if err != nil {
				return nil, err
			}
			s.Names = append(s.Names, name)
			s.Values = append(s.Values, Value{Kind: KindSection, Section: sub})
		case '=':
			p.pos++
			p.skip()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			s.Names = append(s.Names, name)
			s.Values = append(s.Values, v)
		default:
			return nil, p.errorf("%s: expected '=' or '{', found %q", name, p.text[p.pos])
		}
	}
}

// value reads a number, a string or an array.
func (p *parser) value(depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, p.errorf("arrays nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.text) {
		return Value{}, p.errorf("value missing at the end of the text")
	}
	switch c := p.text[p.pos]; {
	case c == '"':
		return p.str()
	case c == '[':
		p.pos++
		var arr []Value
		for {
			p.skip()
			if p.pos >= len(p.text) {
				return Value{}, p.errorf("array not closed before the end of the text")
			}
			if p.text[p.pos] == ']' {
				p.pos++
				return Value{Kind: KindArray, Array: arr}, nil
			}
			if len(arr) > 0 {
				if p.text[p.pos] != ',' {
					return Value{}, p.errorf("expected ',' or ']' in an array, found %q", p.text[p.pos])
				}
				p.pos++
				p.skip()
			}
			if p.values++; p.values > maxValues {
				return Value{}, p.errorf("more than %d values", maxValues)
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			arr = append(arr, v)
		}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.text) && p.text[p.pos] >= '0' && p.text[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.ParseInt(string(p.text[start:p.pos]), 10, 64)
		if err != nil {
			p.pos = start
			return Value{}, p.errorf("number %q out of range or malformed", truncate(p.text[start:], 40))
		}
		return Value{Kind: KindInt, Int: n}, nil
	default:
		return Value{}, p.errorf("expected a value, found %q", c)
	}
}

// str reads a double-quoted string; a backslash escapes the next byte.
func (p *parser) str() (Value, error) {
	start := p.pos
	p.pos++
	var b []byte
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		switch c {
		case '"':
			p.pos++
			return Value{Kind: KindString, Str: string(b)}, nil
		case '\\':
			p.pos++
			if p.pos >= len(p.text) {
				continue
			}
			c = p.text[p.pos]
		}
		b = append(b, c)
		p.pos++
	}
	p.pos = start
	return Value{}, p.errorf("string not closed before the end of the text")
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
