package node

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/ctrlift/ctrlift/containerd"
	"github.com/ctrlift/ctrlift/docker"
)

// dockerLogSet lists the files of a Docker container's log: json-file's
// <id>-json.log and its rotations (.N, .N.gz), or the local driver's
// local-logs/container.log and its rotations, oldest first. A Docker log
// spans the container's restarts: every file is restart 0.
func (n *Node) dockerLogSet(c *containerd.Container) (*LogSet, error) {
	if n.docker == nil || n.runtime == nil || n.runtime.files == nil {
		return nil, fmt.Errorf("%s: no Docker state read", Describe(c))
	}
	dc := n.docker.byID[c.ID]
	if dc == nil {
		return nil, fmt.Errorf("%s: not a Docker container of this node", Describe(c))
	}
	files, err := docker.LogFiles(n.runtime.files, n.docker.st.Root, dc)
	if err != nil {
		// A container never started has no log file yet: its log is
		// empty, as docker logs prints it.
		var de *docker.LogDirError
		if c.Status == containerd.StatusCreated && errors.As(err, &de) {
			return &LogSet{Container: dc.Name, Dir: path.Join(n.docker.st.Root, "containers", c.ID), Files: []LogFile{}, Containers: []containerd.Container{*c}}, nil
		}
		return nil, err
	}
	set := &LogSet{Container: dc.Name, Dir: path.Dir(files[0].Path), Containers: []containerd.Container{*c}}
	for _, f := range files {
		rot := ""
		if f.Rotated > 0 {
			rot = fmt.Sprint(f.Rotated)
		}
		set.Files = append(set.Files, LogFile{Path: f.Path, Rotated: rot, Gzip: f.Gzip, ContainerID: c.ID, Size: f.Size, Format: f.Format})
	}
	return set, nil
}

// dockerFile reads one Docker log file (r is already decompressed) into
// the joiner: records split by dockerd are joined as CRI partial records
// are. A local-driver file whose framing breaks is read up to there, with
// a warning.
func (j *logJoiner) dockerFile(n *Node, r io.Reader, f LogFile) error {
	malformed, firstBad := 0, 0
	each := func(rec *docker.LogRecord) error {
		if rec.Malformed {
			malformed++
			if firstBad == 0 {
				firstBad = rec.Index
			}
			return j.emit(&LogLine{Text: string(rec.Line), Malformed: true, Restart: j.restart, ContainerID: f.ContainerID, File: f.Path, Line: rec.Index, Set: j.set})
		}
		return j.add(rec.Time, rec.Stream, !rec.Partial, rec.Line, f, rec.Index, false)
	}
	var err error
	switch f.Format {
	case docker.LogJSONFile:
		err = docker.ReadJSONLog(r, each)
	case docker.LogLocal:
		err = docker.ReadLocalLog(r, each)
	default:
		return fmt.Errorf("%s: log format %q is not read", f.Path, f.Format)
	}
	var fe *docker.LogFormatError
	if errors.As(err, &fe) {
		n.warn(fmt.Sprintf("%s: %v; read up to there", f.Path, err))
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if c, ok := r.(*capReader); ok && c.hit {
		n.warn(fmt.Sprintf("%s: decompresses to more than %d bytes; read up to there", f.Path, int64(maxGzipLog)))
	}
	if malformed > 0 {
		n.warn(fmt.Sprintf("%s: %d lines are not %s records (first: line %d); given as they are", f.Path, malformed, f.Format, firstBad))
	}
	return nil
}
