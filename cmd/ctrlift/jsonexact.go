package main

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctrlift/ctrlift/export"
)

// JSON cannot carry bytes that are not UTF-8: encoding/json turns them
// into U+FFFD, so a name planted with such bytes in a containerd db, a
// Docker config or a containers/storage store would print mangled. The one
// JSON encoder keeps them exactly, for every row type without per-field
// code: in an object, a string field that is not UTF-8 is printed with
// each bad byte as \xNN (as export.Record's path) and followed by a
// sibling "<name>_b64", the exact bytes in standard base64; a
// map[string]string field with a bad key or value by "<name>_b64" mapping
// base64(key) to base64(value) for the whole map; a []string field by
// "<name>_b64" with every element in base64. Values that are all UTF-8
// print exactly as encoding/json prints them.

// jsonEncoder writes one JSON value per Encode, as json.Encoder does.
type jsonEncoder struct {
	w      io.Writer
	indent bool
	buf    bytes.Buffer  // the compact form of the value being written
	plain  *json.Encoder // writes to buf
}

// newJSON is the one JSON encoder: no HTML escaping ("&&" stays "&&"),
// also inside JSON documents read from the evidence as they were stored
// (containerd stores OCI specs with Go's escaping: "\u0026\u0026"), and
// strings that are not UTF-8 kept exactly in *_b64 siblings.
func newJSON(w io.Writer, indent bool) *jsonEncoder {
	e := &jsonEncoder{w: htmlUnescaper{w}, indent: indent}
	e.plain = json.NewEncoder(&e.buf)
	e.plain.SetEscapeHTML(false)
	return e
}

// Encode writes v and a newline in one Write.
func (e *jsonEncoder) Encode(v any) error {
	e.buf.Reset()
	if err := e.plain.Encode(v); err != nil {
		return err
	}
	b := bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'})
	var err error
	// encoding/json writes a byte that is not UTF-8 as the escape \ufffd
	// (and a real U+FFFD as itself), so without that text no string
	// of v was bad: the common case costs one search of the output.
	if bytes.Contains(b, []byte(`\ufffd`)) {
		if b, err = marshalExact(reflect.ValueOf(v), 0); err != nil {
			return err
		}
	}
	if e.indent {
		var buf bytes.Buffer
		if err := json.Indent(&buf, b, "", "  "); err != nil {
			return err
		}
		b = buf.Bytes()
	}
	_, err = e.w.Write(append(b, '\n'))
	return err
}

// marshalPlain is v as compact JSON without HTML escaping.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// maxExactDepth bounds the walk of a value (a cycle through pointers).
const maxExactDepth = 64

// marshalExact is v as compact JSON with the *_b64 siblings of the
// strings that are not UTF-8.
func marshalExact(v reflect.Value, depth int) ([]byte, error) {
	if !holdsInvalid(v, depth) {
		if !v.IsValid() {
			return []byte("null"), nil
		}
		return marshalPlain(v.Interface())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return marshalExact(v.Elem(), depth+1)
	case reflect.String:
		return marshalPlain(export.EscapeInvalid(v.String()))
	case reflect.Slice, reflect.Array:
		out := []byte{'['}
		for i := range v.Len() {
			if i > 0 {
				out = append(out, ',')
			}
			b, err := marshalExact(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
		return append(out, ']'), nil
	case reflect.Map:
		return marshalExactMap(v, depth)
	case reflect.Struct:
		return marshalExactStruct(v, depth)
	}
	return marshalPlain(v.Interface())
}

// marshalExactMap writes a map as encoding/json does (keys sorted, integer
// keys in decimal), string keys that are not UTF-8 escaped.
func marshalExactMap(v reflect.Value, depth int) ([]byte, error) {
	keyString := func(k reflect.Value) string { return export.EscapeInvalid(k.String()) }
	switch keys := v.Type().Key(); {
	case marshalsItself(keys):
		return marshalPlain(v.Interface()) // keys that write themselves
	case keys.Kind() >= reflect.Int && keys.Kind() <= reflect.Int64:
		keyString = func(k reflect.Value) string { return strconv.FormatInt(k.Int(), 10) }
	case keys.Kind() >= reflect.Uint && keys.Kind() <= reflect.Uintptr:
		keyString = func(k reflect.Value) string { return strconv.FormatUint(k.Uint(), 10) }
	case keys.Kind() != reflect.String:
		return marshalPlain(v.Interface())
	}
	if v.IsNil() {
		return []byte("null"), nil
	}
	type entry struct {
		key   string
		value []byte
	}
	var entries []entry
	for it := v.MapRange(); it.Next(); {
		b, err := marshalExact(it.Value(), depth+1)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{keyString(it.Key()), b})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	out := []byte{'{'}
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		k, err := marshalPlain(e.key)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, k...), ':'), e.value...)
	}
	return append(out, '}'), nil
}

// marshalExactStruct lets encoding/json choose the fields, their order
// and what omitempty leaves out, and replaces the value of each field
// holding bytes that are not UTF-8, followed by its *_b64 sibling.
func marshalExactStruct(v reflect.Value, depth int) ([]byte, error) {
	plain, err := marshalPlain(v.Interface())
	if err != nil {
		return nil, err
	}
	type member struct {
		key   string
		value json.RawMessage
	}
	var members []member
	dec := json.NewDecoder(bytes.NewReader(plain))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return plain, nil // not an object: left as encoding/json wrote it
	}
	emitted := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		members = append(members, member{key, value})
		emitted[key] = true
	}
	fields := jsonFields(v.Type())
	out := []byte{'{'}
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		k, err := marshalPlain(m.key)
		if err != nil {
			return nil, err
		}
		out = append(append(out, k...), ':')
		index, ok := fields[m.key]
		if !ok {
			out = append(out, m.value...)
			continue
		}
		f, err := v.FieldByIndexErr(index)
		if err != nil || !holdsInvalid(f, depth+1) {
			out = append(out, m.value...)
			continue
		}
		b, err := marshalExact(f, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		sibling := m.key + "_b64"
		if exact := exactBytes(f); exact != nil && !emitted[sibling] {
			k, err := marshalPlain(sibling)
			if err != nil {
				return nil, err
			}
			b, err := marshalPlain(exact)
			if err != nil {
				return nil, err
			}
			out = append(append(append(append(out, ','), k...), ':'), b...)
		}
	}
	return append(out, '}'), nil
}

// exactBytes is the *_b64 sibling of a field holding bytes that are not
// UTF-8: a string's bytes, a map[string]string with keys and values in
// base64, or a []string's elements in base64; nil for other kinds.
func exactBytes(f reflect.Value) any {
	for f.Kind() == reflect.Pointer || f.Kind() == reflect.Interface {
		if f.IsNil() {
			return nil
		}
		f = f.Elem()
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	t := f.Type()
	switch {
	case f.Kind() == reflect.String:
		return b64(f.String())
	case f.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String &&
		!marshalsItself(t.Key()) && !marshalsItself(t.Elem()):
		m := make(map[string]string, f.Len())
		for it := f.MapRange(); it.Next(); {
			m[b64(it.Key().String())] = b64(it.Value().String())
		}
		return m
	case (f.Kind() == reflect.Slice || f.Kind() == reflect.Array) && t.Elem().Kind() == reflect.String && !marshalsItself(t.Elem()):
		s := make([]string, f.Len())
		for i := range s {
			s[i] = b64(f.Index(i).String())
		}
		return s
	}
	return nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshalsItself says whether encoding/json leaves t's form to t
// (time.Time, json.RawMessage, status kinds): such values are printed as
// they choose.
func marshalsItself(t reflect.Type) bool {
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	p := reflect.PointerTo(t)
	return p.Implements(jsonMarshalerType) || p.Implements(textMarshalerType)
}

// holdsInvalid says whether a string of v that encoding/json would print
// itself (a field, element, map key or value) is not UTF-8.
func holdsInvalid(v reflect.Value, depth int) bool {
	if depth > maxExactDepth || !v.IsValid() || !v.CanInterface() || marshalsItself(v.Type()) {
		return false
	}
	switch v.Kind() {
	case reflect.String:
		return !utf8.ValidString(v.String())
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && holdsInvalid(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return false // []byte is base64 already
		}
		for i := range v.Len() {
			if holdsInvalid(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		keys := v.Type().Key()
		stringKeys := keys.Kind() == reflect.String && !marshalsItself(keys)
		for it := v.MapRange(); it.Next(); {
			if stringKeys && !utf8.ValidString(it.Key().String()) || holdsInvalid(it.Value(), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if holdsInvalid(v.Field(i), depth+1) {
				return true
			}
		}
	}
	return false
}

// jsonFields maps each JSON member name of struct type t to its field's
// index, with encoding/json's rules: json tags, "-", fields of embedded
// structs promoted, and of several fields with one name the shallowest,
// then the one tagged, else none.
func jsonFields(t reflect.Type) map[string][]int {
	type candidate struct {
		index  []int
		tagged bool
	}
	type level struct {
		t     reflect.Type
		index []int
	}
	fields := map[string][]int{}
	named := map[string]bool{} // by a shallower level, chosen or not
	visited := map[reflect.Type]bool{}
	for current := []level{{t, nil}}; len(current) > 0; {
		var next []level
		byName := map[string][]candidate{}
		var order []string
		for _, l := range current {
			if visited[l.t] {
				continue
			}
			visited[l.t] = true
			for i := range l.t.NumField() {
				f := l.t.Field(i)
				ft := f.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct) {
					continue
				}
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				index := append(append([]int(nil), l.index...), i)
				if name == "" && f.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, level{ft, index})
					continue
				}
				if !f.IsExported() {
					continue
				}
				tagged := name != ""
				if !tagged {
					name = f.Name
				}
				if byName[name] == nil {
					order = append(order, name)
				}
				byName[name] = append(byName[name], candidate{index, tagged})
			}
		}
		for _, name := range order {
			if named[name] {
				continue
			}
			named[name] = true
			cs := byName[name]
			var chosen []candidate
			for _, c := range cs {
				if c.tagged {
					chosen = append(chosen, c)
				}
			}
			if len(cs) == 1 {
				chosen = cs
			}
			if len(chosen) == 1 {
				fields[name] = chosen[0].index
			}
		}
		current = next
	}
	return fields
}
