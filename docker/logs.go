package docker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ctrlift/ctrlift/internal/overlaystore"
)

// Log drivers whose files Docker keeps under the container's directory.
const (
	LogJSONFile = "json-file" // containers/<id>/<id>-json.log, one JSON object a line
	LogLocal    = "local"     // containers/<id>/local-logs/container.log, length-framed protobuf
)

// Limits on log records: dockerd splits lines at 16 KiB; a record of
// more than MaxLogRecord bytes is not one it wrote.
const (
	MaxLogRecord = 1 << 20
	maxLogFiles  = 10000
)

// LogFile is one file of a container's log, oldest first in LogFiles.
type LogFile struct {
	Path    string `json:"path"`              // on the filesystem read
	Format  string `json:"format"`            // LogJSONFile or LogLocal
	Rotated int    `json:"rotated,omitempty"` // the rotation number: 1 is the newest rotated file
	Gzip    bool   `json:"gzip,omitempty"`
	Size    int64  `json:"size"`
}

// LogDirError says why a container has no log files to read.
type LogDirError struct {
	Container string
	Driver    string
	Reason    string
}

func (e *LogDirError) Error() string {
	if e.Driver == "" {
		return fmt.Sprintf("container %s: %s", e.Container, e.Reason)
	}
	return fmt.Sprintf("container %s: log driver %s: %s", e.Container, e.Driver, e.Reason)
}

var (
	jsonLogName  = regexp.MustCompile(`^([0-9a-f]{64})-json\.log(?:\.([0-9]{1,6}))?(\.gz)?$`)
	localLogName = regexp.MustCompile(`^container\.log(?:\.([0-9]{1,6}))?(\.gz)?$`)
)

// LogFiles lists the files of c's log on fsys (the Docker root at
// root): the current file and its rotations, oldest (highest rotation
// number) first. Drivers that keep nothing on the disk (journald, syslog,
// fluentd, none, ...) are refused by name.
func LogFiles(fsys fs.FS, root string, c *Container) ([]LogFile, error) {
	if !ValidID(c.ID) {
		return nil, fmt.Errorf("container id %q is not 64 hex digits", overlaystore.Truncate(c.ID))
	}
	driver := c.LogDriver
	if driver == "" {
		driver = LogJSONFile // the daemon's default when hostconfig does not say
	}
	dir := path.Join(root, "containers", c.ID)
	var re *regexp.Regexp
	switch driver {
	case LogJSONFile:
		re = jsonLogName
	case LogLocal:
		dir, re = path.Join(dir, "local-logs"), localLogName
	default:
		return nil, &LogDirError{Container: c.ID, Driver: driver, Reason: "its logs are not kept in files of the Docker root"}
	}
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, &LogDirError{Container: c.ID, Driver: driver, Reason: err.Error()}
	}
	var out []LogFile
	for _, e := range ents {
		m := re.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		num, gz := m[len(m)-2], m[len(m)-1]
		if driver == LogJSONFile && m[1] != c.ID {
			continue
		}
		if len(out) >= maxLogFiles {
			return nil, fmt.Errorf("%s: more than %d log files", dir, maxLogFiles)
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		f := LogFile{Path: path.Join(dir, e.Name()), Format: driver, Gzip: gz != "", Size: info.Size()}
		if num != "" {
			f.Rotated, _ = strconv.Atoi(num)
			if f.Rotated == 0 {
				continue
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b LogFile) int {
		ra, rb := a.Rotated, b.Rotated
		if ra == 0 {
			ra = -1
		}
		if rb == 0 {
			rb = -1
		}
		if ra != rb {
			return rb - ra
		}
		if a.Gzip != b.Gzip { // a rotation caught between .N and .N.gz: the plain one is newer
			if a.Gzip {
				return -1
			}
			return 1
		}
		return 0
	})
	if len(out) == 0 {
		return nil, &LogDirError{Container: c.ID, Driver: driver, Reason: "no log file in " + dir}
	}
	return out, nil
}

// LogRecord is one record of a Docker log file.
type LogRecord struct {
	Time   time.Time // zero when the record has none
	Stream string    // stdout or stderr
	// Line is the output, without the line end dockerd adds.
	Line []byte
	// Partial: more of the same line follows in the next record of the
	// stream (dockerd splits lines at 16 KiB), or the line never ended.
	Partial bool
	// Malformed: not a record of the format; Line is the raw bytes.
	Malformed bool
	Offset    int64 // of the record in the (decompressed) file
	Index     int   // 1-based: the line (json-file) or frame (local) number
}

// LogFormatError is a log file that cannot be read past Offset: a
// local-driver frame that is not one, a json-file line without an end.
type LogFormatError struct {
	Offset int64
	Reason string
}

func (e *LogFormatError) Error() string {
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Reason)
}

// ReadJSONLog reads a json-file log: one {"log","stream","time"} object a
// line. A line that is not one (cut by a crash mid-write) is given as
// Malformed; a line longer than MaxLogRecord is given cut there, as
// Malformed, and ends the reading with a *LogFormatError.
func ReadJSONLog(r io.Reader, fn func(*LogRecord) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	var off int64
	for no := 1; ; no++ {
		line = line[:0]
		start := off
		var rerr error
		cut := false
		for {
			chunk, err := br.ReadSlice('\n')
			off += int64(len(chunk))
			if len(line)+len(chunk) > MaxLogRecord {
				line = append(line, chunk[:max(0, MaxLogRecord-len(line))]...)
				cut = true
				break
			}
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			rerr = err
			break
		}
		if len(line) == 0 && rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
		if cut {
			// dockerd writes lines of at most 16 KiB of output; past the
			// limit without a line end (a hole, a forged size) the file
			// is not read on.
			if err := fn(&LogRecord{Line: line, Malformed: true, Offset: start, Index: no}); err != nil {
				return err
			}
			return &LogFormatError{Offset: start, Reason: fmt.Sprintf("line %d: more than %d bytes without a line end", no, MaxLogRecord)}
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		rec := parseJSONLine(line)
		rec.Offset, rec.Index = start, no
		if err := fn(rec); err != nil {
			return err
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func parseJSONLine(line []byte) *LogRecord {
	var j struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if json.Unmarshal(line, &j) != nil || j.Log == nil || (j.Stream != "stdout" && j.Stream != "stderr") {
		return &LogRecord{Line: slices.Clone(line), Malformed: true}
	}
	rec := &LogRecord{Stream: j.Stream, Line: []byte(*j.Log)}
	if t, err := time.Parse(time.RFC3339Nano, j.Time); err == nil {
		rec.Time = t.UTC()
	}
	if l, ok := bytes.CutSuffix(rec.Line, []byte("\n")); ok {
		rec.Line = l
	} else {
		rec.Partial = true
	}
	return rec
}

// ReadLocalLog reads a local-driver log: frames of a 4-byte big-endian
// length, a logdriver.LogEntry protobuf of that length, and the length
// again. A frame cut at the end of the file (dockerd killed mid-write)
// ends the file; a length that is not one is a *LogFormatError.
func ReadLocalLog(r io.Reader, fn func(*LogRecord) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	var head, tail [4]byte
	buf := make([]byte, 0, 4<<10)
	for no := 1; ; no++ {
		n, err := io.ReadFull(br, head[:])
		if err == io.EOF {
			return nil
		}
		if err == io.ErrUnexpectedEOF {
			return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: the file ends inside its length (%d of 4 bytes)", no, n)}
		}
		if err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(head[:])
		if size > MaxLogRecord {
			return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: length %d exceeds the %d-byte limit", no, size, MaxLogRecord)}
		}
		if cap(buf) < int(size) {
			buf = make([]byte, 0, size)
		}
		buf = buf[:size]
		if n, err := io.ReadFull(br, buf); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: the file ends inside it (%d of %d bytes)", no, n, size)}
			}
			return err
		}
		if n, err := io.ReadFull(br, tail[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: the file ends inside its trailing length (%d of 4 bytes)", no, n)}
			}
			return err
		}
		if tail != head {
			return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: trailing length %d is not the leading %d", no, binary.BigEndian.Uint32(tail[:]), size)}
		}
		rec, err := parseLogEntry(buf)
		if err != nil {
			return &LogFormatError{Offset: off, Reason: fmt.Sprintf("frame %d: %v", no, err)}
		}
		rec.Offset, rec.Index = off, no
		off += 8 + int64(size)
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// parseLogEntry decodes a logdriver.LogEntry: source (1), time_nano (2),
// line (3), partial (4), partial_log_metadata (5: last (1), id (2),
// ordinal (3)).
func parseLogEntry(b []byte) (*LogRecord, error) {
	rec := &LogRecord{}
	var partial, last bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errors.New("not a LogEntry: " + protowire.ParseError(n).Error())
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("source: %v", protowire.ParseError(n))
			}
			rec.Stream, b = string(v), b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("time_nano: %v", protowire.ParseError(n))
			}
			if v != 0 {
				rec.Time = time.Unix(0, int64(v)).UTC()
			}
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("line: %v", protowire.ParseError(n))
			}
			rec.Line, b = slices.Clone(v), b[n:]
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("partial: %v", protowire.ParseError(n))
			}
			partial, b = v != 0, b[n:]
		case num == 5 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("partial_log_metadata: %v", protowire.ParseError(n))
			}
			b = b[n:]
			var err error
			if last, err = partialLast(v); err != nil {
				return nil, fmt.Errorf("partial_log_metadata: %v", err)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if rec.Stream != "stdout" && rec.Stream != "stderr" {
		return nil, fmt.Errorf("source %q is not stdout or stderr", overlaystore.Truncate(rec.Stream))
	}
	// The last piece of a split line ends it; a partial record without
	// metadata is output that never got its line end.
	rec.Partial = partial && !last
	return rec, nil
}

func partialLast(b []byte) (bool, error) {
	last := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false, protowire.ParseError(n)
			}
			last, b = v != 0, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return last, nil
}
