package containerd

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// decoder collects warnings while turning bucket values into Go values, so
// one bad field costs that field, not the whole record.
type decoder struct {
	warnings *[]string
}

func (d decoder) warn(format string, args ...any) {
	*d.warnings = append(*d.warnings, fmt.Sprintf(format, args...))
}

// timeAt decodes a Go time.Time MarshalBinary value (containerd's createdat
// and updatedat) and returns it in UTC.
func (d decoder) timeAt(b *boltsafe.Bucket, key, where string) time.Time {
	v := b.Get(key)
	if v == nil {
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalBinary(v); err != nil {
		d.warn("%s: %s: %v (value %x)", where, key, err, v)
		return time.Time{}
	}
	if y := t.Year(); y < 0 || y > 9999 {
		// RFC 3339 (and so JSON output) stops at year 9999.
		d.warn("%s: %s: year %d out of range (value %x); shown as unset", where, key, y, v)
		return time.Time{}
	}
	return t.UTC()
}

// varint decodes a signed varint (sizes, inodes, schema version).
func (d decoder) varint(b *boltsafe.Bucket, key, where string) (int64, bool) {
	v := b.Get(key)
	if v == nil {
		return 0, false
	}
	n, k := binary.Varint(v)
	if k <= 0 || k != len(v) {
		d.warn("%s: %s: bad signed varint %x", where, key, v)
		return 0, false
	}
	return n, true
}

// uvarint decodes an unsigned varint (snapshot ids).
func (d decoder) uvarint(b *boltsafe.Bucket, key, where string) (uint64, bool) {
	v := b.Get(key)
	if v == nil {
		return 0, false
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || k != len(v) {
		d.warn("%s: %s: bad unsigned varint %x", where, key, v)
		return 0, false
	}
	return n, true
}

// AnyValue is a decoded protobuf Any from meta.db (spec, runtime options,
// extensions).
type AnyValue struct {
	TypeURL string `json:"type_url"`
	// JSON holds the value when it is JSON, as containerd stores the OCI
	// spec and the CRI metadata.
	JSON json.RawMessage `json:"json,omitempty"`
	// Fields holds the decoded fields of known protobuf messages (runc
	// options), by field name.
	Fields map[string]any `json:"fields,omitempty"`
	// Raw holds the value bytes otherwise (base64 in JSON).
	Raw []byte `json:"raw,omitempty"`
}

func (d decoder) anyValue(v []byte, where string) *AnyValue {
	if v == nil {
		return nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(v, &a); err != nil {
		d.warn("%s: not a protobuf Any: %v", where, err)
		return &AnyValue{Raw: v}
	}
	out := &AnyValue{TypeURL: a.TypeUrl}
	switch {
	case len(a.Value) > 0 && json.Valid(a.Value):
		out.JSON = json.RawMessage(a.Value)
	case a.TypeUrl == "containerd.runc.v1.Options" || a.TypeUrl == "io.containerd.runc.v1.Options":
		f, err := protoFields(a.Value, runcOptionNames)
		if err != nil {
			d.warn("%s: %s: %v", where, a.TypeUrl, err)
			out.Raw = a.Value
		} else {
			out.Fields = f
		}
	case len(a.Value) > 0:
		out.Raw = a.Value
	}
	return out
}

// runcOptionNames are the field names of containerd's runc shim options
// (api/types/runc/options/oci.proto).
var runcOptionNames = map[protowire.Number]string{
	1: "no_pivot_root", 2: "no_new_keyring", 3: "shim_cgroup", 4: "io_uid", 5: "io_gid",
	6: "binary_name", 7: "root", 8: "criu_path", 9: "systemd_cgroup",
	10: "criu_image_path", 11: "criu_work_path", 12: "task_api_address", 13: "task_api_version",
}

// protoFields decodes a flat protobuf message without its schema: varints as
// numbers, length-delimited fields as strings when they are UTF-8, else
// base64. Unknown field numbers are named "field_N".
func protoFields(b []byte, names map[protowire.Number]string) (map[string]any, error) {
	out := map[string]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		name := names[num]
		if name == "" {
			name = fmt.Sprintf("field_%d", num)
		}
		var val any
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			val, b = v, b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			if utf8.Valid(v) {
				val = string(v)
			} else {
				val = base64.StdEncoding.EncodeToString(v)
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			val, b = base64.StdEncoding.EncodeToString(b[:n]), b[n:]
		}
		out[name] = val
	}
	return out, nil
}
