//go:build linux

package hostile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Outcomes of a run or a variant, worst last.
const (
	OutcomeOK    = "success"
	OutcomeError = "clean error"
	// OutcomeRunaway is an export that wrote more than the harness's file
	// size limit (Config.FileSize), which is above what SECURITY.md bounds
	// an export by (the filesystem's size plus 256 MiB of zeros).
	OutcomeRunaway = "runaway output"
	OutcomeUnclear = "unclear error" // exit 1 without a one-line "ctrlift:" error
	OutcomeOutput  = "bad output"    // success, but the export is not a readable tar
	OutcomeWrite   = "stray write"   // wrote outside the output path, or changed the image
	OutcomeEscape  = "read outside"  // opened a file outside the evidence directory (Base.Outside)
	OutcomeCrash   = "crash"         // killed by a signal or an unexpected exit code
	OutcomePanic   = "panic"         // a Go panic, fatal error or stack trace
	OutcomeMemory  = "memory"        // peak RSS over the limit or out of memory
	OutcomeTimeout = "timeout"       // over the wall-clock limit
)

// OutcomeOrder lists outcomes from best to worst, for reports.
var OutcomeOrder = []string{OutcomeOK, OutcomeError, OutcomeUnclear, OutcomeRunaway, OutcomeOutput, OutcomeWrite, OutcomeEscape, OutcomeCrash, OutcomePanic, OutcomeMemory, OutcomeTimeout}

func rank(o string) int {
	for i, x := range OutcomeOrder {
		if x == o {
			return i
		}
	}
	return len(OutcomeOrder)
}

// Failed reports whether an outcome breaks ctrlift's promises.
func Failed(o string) bool { return rank(o) >= rank(OutcomeUnclear) }

// Config is how children are run.
type Config struct {
	Bin       string        // ctrlift binary
	Limiter   string        // limitexec binary
	Timeout   time.Duration // wall clock per run
	MaxRSS    int64         // peak resident set, bytes
	AddrSpace uint64        // RLIMIT_AS: the Go runtime reserves ~1 GiB of address space (randomly placed) up front
	FileSize  uint64        // RLIMIT_FSIZE: bounds what a runaway export can write
	UID, GID  int           // run as this user when >= 0 (the harness runs as root)
	MaxCtrs   int           // containers exercised per variant
	ExtraEnv  []string      // added to the children's environment (the harness's self-test)
}

// Run is one child process.
type Run struct {
	Args    []string
	Exit    int
	Signal  string
	Stdout  []byte
	Stderr  string
	MaxRSS  int64
	Wall    time.Duration
	CPU     time.Duration // user + system time of ctrlift
	Outcome string
	ErrLine string // the error line, without "ctrlift: "
	Problem string
}

// Result is the outcome of one variant.
type Result struct {
	V        *Variant
	Runs     []Run
	Outcome  string
	Problems []string
	Wall     time.Duration
}

func (r *Result) fail(outcome, format string, args ...any) {
	if rank(outcome) > rank(r.Outcome) {
		r.Outcome = outcome
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

var fingerprintSeed = maphash.MakeSeed()

// Worker runs variants one after another in its own directory.
type Worker struct {
	cfg    *Config
	dir    string
	imgDir string // where the variant images live ("next to the evidence")
	copies map[string]string

	// outside holds the escape targets of the bases (Base.Outside),
	// watched with inotify: ctrlift must never open them.
	outside string
	made    map[string]bool
	ino     int              // inotify descriptor, -1 until a target is made
	wds     map[int32]string // watched directories
}

// NewWorker prepares a worker directory under dir.
func NewWorker(cfg *Config, dir string) (*Worker, error) {
	w := &Worker{cfg: cfg, dir: dir, imgDir: filepath.Join(dir, "img"), copies: map[string]string{},
		outside: filepath.Join(dir, "outside"), made: map[string]bool{}, ino: -1, wds: map[int32]string{}}
	if err := os.MkdirAll(w.imgDir, 0o755); err != nil {
		return nil, err
	}
	if err := w.own(w.imgDir); err != nil {
		return nil, err
	}
	return w, nil
}

// own gives a path to the child user, so that it could write there: the
// checks then see whether it did.
func (w *Worker) own(p string) error {
	if w.cfg.UID < 0 {
		return nil
	}
	return os.Lchown(p, w.cfg.UID, w.cfg.GID)
}

// working returns the worker's copy of base, creating it.
func (w *Worker) working(b *Base) (string, error) {
	if p, ok := w.copies[b.Name]; ok {
		return p, nil
	}
	p := filepath.Join(w.imgDir, b.Name+".img")
	if err := CopySparse(p, b.f, 0, b.Size); err != nil {
		return "", err
	}
	if err := w.own(p); err != nil {
		return "", err
	}
	w.copies[b.Name] = p
	return p, nil
}

type fileState struct {
	size         int64
	mtime, ctime unix.Timespec
	ino          uint64
	sum          uint64
	what         string // a directory's: its entries and their states
}

// dirStateOf fingerprints a variant's directory: every entry, the
// contents of its regular files (FIFOs are never opened), link targets.
func dirStateOf(dir string) (fileState, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fileState{}, err
	}
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	var names []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fileState{}, err
		}
		desc := fmt.Sprintf("%s mode %o size %d ctime %v", e.Name(), st.Mode, st.Size, st.Ctim)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fs, err := stateOf(p)
			if err != nil {
				return fileState{}, err
			}
			desc += fmt.Sprintf(" sum %x", fs.sum)
		case unix.S_IFLNK:
			t, _ := os.Readlink(p)
			desc += " -> " + t
		}
		fmt.Fprintln(&h, desc)
		names = append(names, e.Name())
	}
	return fileState{sum: h.Sum64(), what: strings.Join(names, ", ")}, nil
}

// stateOf fingerprints a file: stat times (any write changes ctime) and a
// hash of its data extents (maphash: fast, and nothing here is adversarial
// about collisions).
func stateOf(p string) (fileState, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fileState{}, err
	}
	fs := fileState{size: st.Size, mtime: st.Mtim, ctime: st.Ctim, ino: st.Ino}
	f, err := os.Open(p)
	if err != nil {
		return fs, err
	}
	defer f.Close()
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	buf := make([]byte, 1<<20)
	for pos := int64(0); pos < st.Size; {
		d, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole follows
		}
		if err != nil {
			return fs, err
		}
		e, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			return fs, err
		}
		fmt.Fprintf(&h, "%d:", d)
		if _, err := io.CopyBuffer(&h, io.NewSectionReader(f, d, e-d), buf); err != nil {
			return fs, err
		}
		pos = e
	}
	fs.sum = h.Sum64()
	return fs, nil
}

// Close releases the worker's inotify descriptor.
func (w *Worker) Close() {
	if w.ino >= 0 {
		unix.Close(w.ino)
		w.ino = -1
	}
}

// makeOutside puts the escape targets of base b into the worker's outside
// directory (../../outside from a variant's directory) and watches them.
func (w *Worker) makeOutside(b *Base) error {
	for _, rel := range sortedKeys(b.Outside) {
		if w.made[rel] {
			continue
		}
		dst := filepath.Join(w.outside, rel)
		dir := filepath.Dir(dst)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := copyFileSparse(b.Outside[rel], dst); err != nil {
			return err
		}
		w.made[rel] = true
		if err := w.watch(dir); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) watch(dir string) error {
	for _, d := range w.wds {
		if d == dir {
			return nil
		}
	}
	if w.ino < 0 {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("inotify: %w", err)
		}
		w.ino = fd
	}
	wd, err := unix.InotifyAddWatch(w.ino, dir, unix.IN_OPEN|unix.IN_ACCESS)
	if err != nil {
		return fmt.Errorf("inotify %s: %w", dir, err)
	}
	w.wds[int32(wd)] = dir
	return nil
}

// opened returns the opens and reads of watched files since the last call.
func (w *Worker) opened() []string {
	if w.ino < 0 {
		return nil
	}
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.ino, buf)
		if n <= 0 || err != nil {
			return out
		}
		for p := 0; p+unix.SizeofInotifyEvent <= n; {
			wd := int32(le.Uint32(buf[p:]))
			mask := le.Uint32(buf[p+4:])
			l := int(le.Uint32(buf[p+12:]))
			name := strings.TrimRight(string(buf[p+unix.SizeofInotifyEvent:min(n, p+unix.SizeofInotifyEvent+l)]), "\x00")
			what := "read"
			if mask&unix.IN_OPEN != 0 {
				what = "opened"
			}
			f := strings.TrimPrefix(filepath.Join(w.wds[wd], name), w.dir+"/")
			if e := what + " " + f; len(out) < 8 && !slices.Contains(out, e) {
				out = append(out, e)
			}
			p += unix.SizeofInotifyEvent + l
		}
	}
}

// prepare writes the variant image and returns its path and an undo.
func (w *Worker) prepare(v *Variant) (string, func() error, error) {
	if v.Base.Set != nil {
		// A directory of its own, written for each variant.
		dir := filepath.Join(w.imgDir, v.Base.Name)
		os.RemoveAll(dir)
		img, err := v.WriteDir(dir, w.outside)
		undo := func() error { return os.RemoveAll(dir) }
		if err != nil {
			return "", undo, err
		}
		err = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return w.own(p)
		})
		return img, undo, err
	}
	if v.Truncate >= 0 {
		p := filepath.Join(w.imgDir, "truncated.img")
		if err := CopySparse(p, v.Base.f, 0, v.Truncate); err != nil {
			return "", nil, err
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return "", nil, err
		}
		for _, pt := range v.Patches {
			if pt.Off < v.Truncate {
				d := pt.Data[:min(int64(len(pt.Data)), v.Truncate-pt.Off)]
				if _, err := f.WriteAt(d, pt.Off); err != nil {
					f.Close()
					return "", nil, err
				}
			}
		}
		if err := f.Close(); err != nil {
			return "", nil, err
		}
		return p, func() error { return os.Remove(p) }, w.own(p)
	}
	p, err := w.working(v.Base)
	if err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for _, pt := range v.Patches {
		if _, err := f.WriteAt(pt.Data, pt.Off); err != nil {
			return "", nil, err
		}
	}
	undo := func() error {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		for i := len(v.Patches) - 1; i >= 0; i-- {
			pt := v.Patches[i]
			orig := make([]byte, len(pt.Data))
			if _, err := v.Base.ReadAt(orig, pt.Off); err != nil && err != io.EOF {
				f.Close()
				return err
			}
			if _, err := f.WriteAt(orig, pt.Off); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}
	return p, undo, nil
}

// discard forgets a working copy that may have been changed.
func (w *Worker) discard(b *Base) {
	if p, ok := w.copies[b.Name]; ok {
		os.Remove(p)
		delete(w.copies, b.Name)
	}
}

// Check runs ctrlift on variant v and checks every promise.
func (w *Worker) Check(v *Variant) *Result {
	start := time.Now()
	res := &Result{V: v, Outcome: OutcomeOK}
	defer func() { res.Wall = time.Since(start) }()
	img, undo, err := w.prepare(v)
	if err != nil {
		res.fail(OutcomeCrash, "harness: preparing variant: %v", err)
		return res
	}
	state := func() (fileState, error) { return stateOf(img) }
	if v.Base.Set != nil {
		dir := filepath.Dir(img)
		state = func() (fileState, error) { return dirStateOf(dir) }
	}
	if len(v.Base.Outside) > 0 {
		if err := w.makeOutside(v.Base); err != nil {
			undo()
			res.fail(OutcomeCrash, "harness: %v", err)
			return res
		}
	}
	w.opened() // the harness's own
	before, err := state()
	if err != nil {
		undo()
		res.fail(OutcomeCrash, "harness: %v", err)
		return res
	}
	run := filepath.Join(w.dir, "run")
	os.RemoveAll(run)
	dirs := map[string]string{}
	for _, d := range []string{"cwd", "home", "tmp", "out"} {
		dirs[d] = filepath.Join(run, d)
		os.MkdirAll(dirs[d], 0o755)
		w.own(dirs[d])
	}
	w.runAll(v, img, dirs, res)
	if opened := w.opened(); len(opened) > 0 {
		res.fail(OutcomeEscape, "outside the evidence directory: %s", strings.Join(opened, ", "))
	}

	after, err := state()
	switch {
	case err != nil:
		res.fail(OutcomeWrite, "image file: %v", err)
	case after != before && v.Base.Set != nil:
		res.fail(OutcomeWrite, "evidence directory changed: entries %s before, %s after (or their contents, times)", before.what, after.what)
	case after != before:
		res.fail(OutcomeWrite, "image file changed: size %d -> %d, content hash %x -> %x, ctime %v -> %v", before.size, after.size, before.sum, after.sum, before.ctime, after.ctime)
	}
	// Nothing may appear next to the image, in the working directory, in
	// HOME or TMPDIR; only out/ holds what was asked for.
	want := map[string]bool{filepath.Base(img): true}
	if v.Base.Set != nil {
		want = map[string]bool{v.Base.Name: true}
	}
	for _, p := range w.copies {
		want[filepath.Base(p)] = true
	}
	ents, _ := os.ReadDir(w.imgDir)
	for _, e := range ents {
		if !want[e.Name()] {
			res.fail(OutcomeWrite, "file %q appeared next to the image", e.Name())
			os.RemoveAll(filepath.Join(w.imgDir, e.Name()))
		}
	}
	for _, d := range []string{"cwd", "home", "tmp"} {
		filepath.WalkDir(dirs[d], func(p string, e os.DirEntry, err error) error {
			if p != dirs[d] {
				res.fail(OutcomeWrite, "%s appeared in %s", strings.TrimPrefix(p, run+"/"), d)
			}
			return nil
		})
	}
	changed := err != nil || after != before
	switch {
	case v.Base.Set != nil:
		undo()
	case v.Truncate >= 0:
		undo()
	case changed:
		w.discard(v.Base)
	default:
		if err := undo(); err != nil {
			res.fail(OutcomeCrash, "harness: undo: %v", err)
			w.discard(v.Base)
		}
	}
	os.RemoveAll(run)
	return res
}

func (w *Worker) runAll(v *Variant, img string, dirs map[string]string, res *Result) {
	out := dirs["out"]
	do := func(sink func(io.Reader) error, args ...string) *Run {
		r := w.exec(args, dirs, sink)
		res.Runs = append(res.Runs, *r)
		if (r.Outcome == OutcomeError || r.Outcome == OutcomeRunaway) && rank(r.Outcome) > rank(res.Outcome) {
			res.Outcome = r.Outcome
		}
		if Failed(r.Outcome) {
			res.fail(r.Outcome, "ctrlift %s: %s", strings.Join(r.Args, " "), r.Problem)
		}
		return r
	}
	// export writes a tar into out/ (checked afterwards) or, two times in
	// three, to stdout, read back as it streams: files are slow to write
	// on some CI machines.
	export := func(name string, args []string, ref ...string) {
		var sink func(io.Reader) error
		p := filepath.Join(out, name)
		args = append([]string{}, args...)
		dest := p
		switch v.R.IntN(6) {
		case 0:
			args = append(args, "--changes")
		case 1:
			args = append(args, "--manifest", p+".jsonl")
		case 2:
			p += ".zst"
			dest = p
		default:
			dest = "-"
			sink, p = readTar, ""
		}
		// The destination follows REF, which may come after "--".
		if len(ref) == 0 {
			ref = []string{"--"}
		}
		args = append(append(args, ref...), dest)
		if r := do(sink, args...); r.Outcome == OutcomeOK && p != "" {
			if err := checkTarFile(p); err != nil {
				res.fail(OutcomeOutput, "ctrlift %s succeeded but %v", strings.Join(args, " "), err)
			}
		}
	}
	if v.Base.Kind != KindTree { // a tree has no partitions
		do(nil, "partitions", "-i", img)
	}
	list := do(nil, "list", "containers", "--all", "-o", "json", "-i", img)
	if v.Base.Kind != KindContainerd && v.Base.Kind != KindTree && v.Base.Kind != KindCStorage && v.Base.Kind != KindDocker {
		dir := "."
		if len(v.Base.ExportDirs) > 0 {
			dir = pick(v.R, v.Base.ExportDirs)
		}
		export("fs.tar", []string{"export", "-i", img, "--layer-dirs", dir})
		return
	}
	var ctrs []Container
	if list.Outcome == OutcomeOK {
		var rows []struct {
			Namespace string `json:"namespace"`
			ID        string `json:"id"`
		}
		if err := json.Unmarshal(list.Stdout, &rows); err != nil {
			res.fail(OutcomeOutput, "list containers -o json: %v", err)
		}
		for _, r := range rows {
			if !strings.ContainsRune(r.ID+r.Namespace, 0) && r.ID != "" {
				ctrs = append(ctrs, Container{r.Namespace, r.ID})
			}
		}
	} else if len(v.Base.Containers) > 0 {
		// Every command fails where list did; one container shows it.
		ctrs = v.Base.Containers[:1]
	}
	maxCtrs := w.cfg.MaxCtrs
	if v.Base.Format != "" {
		// The evidence classes damage the container format: two
		// containers read enough of the disk, and keep the classes cheap.
		maxCtrs = min(maxCtrs, evidenceCtrs)
	}
	if len(ctrs) > maxCtrs {
		v.R.Shuffle(len(ctrs), func(i, j int) { ctrs[i], ctrs[j] = ctrs[j], ctrs[i] })
		ctrs = ctrs[:maxCtrs]
	}
	for i, c := range ctrs {
		// "--": an id read from the image may start with a dash.
		ref := []string{"-n", c.Namespace, "--", c.ID}
		if c.Namespace == "" || strings.HasPrefix(c.Namespace, "-") {
			ref = []string{"--", c.ID}
		}
		do(nil, append([]string{"info", "container", "-i", img}, ref...)...)
		do(nil, append([]string{"diff", "-o", "jsonl", "-i", img}, ref...)...)
		export(fmt.Sprintf("c%d.tar", i), []string{"export", "-i", img}, ref...)
		if v.Base.Kind == KindDocker {
			do(nil, append([]string{"logs", "-o", "jsonl", "-i", img}, ref...)...)
		}
	}
	if v.R.IntN(16) == 0 {
		do(nil, "export", "-i", img, "--all", "-d", filepath.Join(out, "all"))
	}
}

// checkTarFile reads a written export back.
func checkTarFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".zst") {
		d, err := zstd.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %v", filepath.Base(p), err)
		}
		defer d.Close()
		r = d
	}
	if err := readTar(r); err != nil {
		return fmt.Errorf("%s: %v", filepath.Base(p), err)
	}
	return nil
}

// readTar reads a whole tar stream.
func readTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a valid tar: %v", err)
		}
		// A member that climbs out of the extraction directory.
		if name := strings.TrimSuffix(h.Name, "/"); strings.HasPrefix(name, "/") || name == ".." ||
			strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
			return fmt.Errorf("a tar with the unsafe member name %q", h.Name)
		}
		// At most maxEntryRead of each member's content: a sparse member
		// (a PAX sparse map) expands its holes as zeros in archive/tar,
		// so an export of a file whose forged size is 1 TiB would take
		// the harness hours to read although ctrlift wrote a few bytes.
		// Next skips the rest of the member's bytes as stored, so a
		// stream cut short still fails there.
		if _, err := io.CopyN(io.Discard, tr, maxEntryRead); err != nil && err != io.EOF {
			return fmt.Errorf("not a valid tar: %v", err)
		}
	}
}

// maxEntryRead bounds what readTar reads of one member's content.
const maxEntryRead = 64 << 20

var (
	stackRE = regexp.MustCompile(`(?m)^(panic: |fatal error: |goroutine \d+ \[|\t.*\.go:\d+|runtime error|\[signal SIG)|SIGSEGV|SIGBUS`)
	oomRE   = regexp.MustCompile(`out of memory|cannot allocate memory`)
	// EFBIG from RLIMIT_FSIZE while export copies one file's data.
	runawayRE = regexp.MustCompile(`export: [^\n]*: write [^\n]*: file too large`)
)

// exec runs one ctrlift command in a child process and classifies it.
func (w *Worker) exec(args []string, dirs map[string]string, sink func(io.Reader) error) *Run {
	r := &Run{Args: args}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	argv := []string{
		fmt.Sprintf("-as=%d", w.cfg.AddrSpace), fmt.Sprintf("-fsize=%d", w.cfg.FileSize),
		fmt.Sprintf("-cpu=%d", int(w.cfg.Timeout.Seconds())*3), "--", w.cfg.Bin,
	}
	cmd := exec.CommandContext(ctx, w.cfg.Limiter, append(argv, args...)...)
	cmd.Dir = dirs["cwd"]
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "LANG=C", "HOME=" + dirs["home"], "XDG_CACHE_HOME=" + filepath.Join(dirs["home"], ".cache"),
		"TMPDIR=" + dirs["tmp"],
	}
	cmd.Env = append(cmd.Env, w.cfg.ExtraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if w.cfg.UID >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(w.cfg.UID), Gid: uint32(w.cfg.GID), NoSetGroups: true}
	}
	// Out of time: SIGQUIT makes ctrlift print where it is; WaitDelay
	// then ends the wait, and the group is killed below in any case.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT) }
	cmd.WaitDelay = 3 * time.Second
	stdout := &capBuffer{max: 8 << 20}
	stderr := &capBuffer{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var sinkErr chan error
	var pw *io.PipeWriter
	if sink != nil {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		sinkErr = make(chan error, 1)
		go func() {
			lr := &limitedReader{r: pr, left: int64(w.cfg.FileSize)}
			// Buffered: tar reads 512-byte blocks, and each read of an
			// io.Pipe is a goroutine hand-off.
			err := sink(bufio.NewReaderSize(lr, 256<<10))
			io.Copy(io.Discard, lr) // what follows the end of the tar counts too
			if lr.left < 0 {
				// As a file would hit RLIMIT_FSIZE: stop the flood.
				err = errRunaway
				pr.CloseWithError(errRunaway)
			}
			io.Copy(io.Discard, pr)
			sinkErr <- err
		}()
		cmd.Stdout = pw
	}
	// limitexec reports ctrlift's own peak RSS, exit code and signal on fd 3.
	rep, repw, err := os.Pipe()
	if err != nil {
		r.Outcome, r.Problem = OutcomeCrash, "harness: "+err.Error()
		return r
	}
	defer rep.Close()
	cmd.ExtraFiles = []*os.File{repw}
	start := time.Now()
	err = cmd.Start()
	repw.Close()
	if err == nil {
		err = cmd.Wait()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // nothing of the run survives it
	}
	r.Wall = time.Since(start)
	r.Stdout, r.Stderr = stdout.Bytes(), stderr.String()
	var outErr error
	if sink != nil {
		pw.Close()
		outErr = <-sinkErr
	}
	report, _ := io.ReadAll(io.LimitReader(rep, 4096))
	if ps := cmd.ProcessState; ps != nil {
		r.Exit = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = ws.Signal().String()
		}
	}
	var kib, cpu int64
	var exit int
	var sig string
	if _, perr := fmt.Sscanf(string(report), "maxrss=%d exit=%d signal=%q cpu=%d", &kib, &exit, &sig, &cpu); perr == nil {
		r.MaxRSS, r.Exit, r.CPU = kib*1024, exit, time.Duration(cpu)*time.Millisecond
		if sig != "" {
			r.Signal = sig
		}
	} else if ctx.Err() == nil {
		r.Outcome, r.Problem = OutcomeCrash, fmt.Sprintf("harness: no report from limitexec (%v): %s", err, clip(r.Stderr, 300))
		return r
	}
	switch {
	case ctx.Err() != nil:
		r.Outcome, r.Problem = OutcomeTimeout, fmt.Sprintf("still running after %v; at %s", w.cfg.Timeout, where(r.Stderr))
	case r.MaxRSS > w.cfg.MaxRSS || oomRE.MatchString(r.Stderr) && stackRE.MatchString(r.Stderr):
		r.Outcome, r.Problem = OutcomeMemory, fmt.Sprintf("peak RSS %d MiB; %s", r.MaxRSS>>20, clip(r.Stderr, 1500))
	case stackRE.MatchString(r.Stderr):
		r.Outcome, r.Problem = OutcomePanic, clip(r.Stderr, 1500)
	case errors.Is(outErr, errRunaway):
		r.Outcome, r.Problem = OutcomeRunaway, fmt.Sprintf("more than %d bytes on stdout", w.cfg.FileSize)
	case r.Signal != "":
		r.Outcome, r.Problem = OutcomeCrash, "killed by "+r.Signal
	case r.Exit != 0 && r.Exit != 1:
		r.Outcome, r.Problem = OutcomeCrash, fmt.Sprintf("exit status %d: %s", r.Exit, lastLine(r.Stderr))
	case strings.ContainsFunc(r.Stderr, func(c rune) bool { return c < 0x20 && c != '\n' || c == 0x7f }):
		i := strings.IndexFunc(r.Stderr, func(c rune) bool { return c < 0x20 && c != '\n' || c == 0x7f })
		r.Outcome, r.Problem = OutcomeUnclear, fmt.Sprintf("raw control character %q on stderr: %q", r.Stderr[i], clip(r.Stderr[max(0, i-80):], 200))
	case bytes.Contains(r.Stdout, []byte(EscapeToken)) || strings.Contains(r.Stderr, EscapeToken):
		r.Outcome, r.Problem = OutcomeEscape, fmt.Sprintf("printed %s, which only a file outside the evidence directory holds", EscapeToken)
	case r.Exit == 1:
		line, ok := errorLine(r.Stderr)
		r.ErrLine = line
		switch {
		case ok && runawayRE.MatchString(r.Stderr):
			r.Outcome, r.Problem = OutcomeRunaway, runawayRE.FindString(r.Stderr)
		case ok:
			r.Outcome = OutcomeError
		default:
			r.Outcome, r.Problem = OutcomeUnclear, fmt.Sprintf("no one-line error: %q", clip(r.Stderr, 300))
		}
	case outErr != nil:
		r.Outcome, r.Problem = OutcomeOutput, "succeeded but stdout is "+outErr.Error()
	default:
		r.Outcome = OutcomeOK
	}
	return r
}

// evidenceCtrs is how many containers a variant of an evidence base
// exercises.
const evidenceCtrs = 2

// errRunaway ends the reading of an export on stdout that exceeds the
// file size limit.
var errRunaway = errors.New("runaway output")

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errRunaway
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// mainGoroutine returns the stack of goroutine 1 from a goroutine dump.
func mainGoroutine(dump string) string {
	// "goroutine 1 [running]:", or with gp=, m= details before the bracket.
	i := strings.Index(dump, "\ngoroutine 1 ")
	if i < 0 {
		return ""
	}
	i++
	rest := dump[i:]
	if j := strings.Index(rest[1:], "\ngoroutine "); j >= 0 {
		rest = rest[:j+1]
	}
	return rest
}

// where summarises a goroutine dump: the ctrlift functions on the stack
// of the main goroutine (or of the first one).
func where(dump string) string {
	if g := mainGoroutine(dump); g != "" {
		dump = g
	}
	var fns []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "goroutine ") && len(fns) > 0 {
			break
		}
		if strings.HasPrefix(l, "github.com/ctrlift/ctrlift/") {
			fn, _, _ := strings.Cut(strings.TrimPrefix(l, "github.com/ctrlift/ctrlift/"), "(0x")
			fns = append(fns, fn)
		}
	}
	if len(fns) == 0 {
		return "(no stack)"
	}
	return strings.Join(fns[:min(len(fns), 8)], " < ")
}

// errorLine finds the error ctrlift printed: the last line starting with
// "ctrlift: " that is not a warning. Only indented detail lines (candidate
// lists, partitions searched) may follow it.
func errorLine(stderr string) (string, bool) {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "ctrlift: ") && !strings.HasPrefix(l, "ctrlift: warning:") {
			at = i
		}
	}
	if at < 0 {
		return "", false
	}
	for _, l := range lines[at+1:] {
		if !strings.HasPrefix(l, "  ") {
			return strings.TrimPrefix(lines[at], "ctrlift: "), false
		}
	}
	return strings.TrimPrefix(lines[at], "ctrlift: "), true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return clip(s, 200)
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return clip(l[len(l)-1], 200)
}

func firstMatchLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if stackRE.MatchString(l) {
			return clip(l, 200)
		}
	}
	return firstLine(s)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// --- error message quality ---

var (
	// An error names where it is: a byte offset, an inode, a bbolt page,
	// an LBA or a block.
	locatedRE = regexp.MustCompile(`(?i)\b(at byte -?\d+|byte \d+|offset (0x)?[0-9a-f]+|inode \d+|page \d+|LBA \d+|block \d+|sector \d+)`)
	// Errors about containerd records name the record (a snapshot,
	// container, layer directory or bucket) rather than an offset; so do
	// errors about the files of an evidence container.
	recordRE = regexp.MustCompile(`(?i)(snapshot|container|layer \d+|bucket|namespace|no containerd root|partition|matches|empty image|^export: /|` +
		// Records of the evidence containers: a segment file, an extent
		// file, a backing file or parent, the descriptor, and features
		// refused by name.
		`segment \d+|extent "|backing file|parent|external data file|encrypted|descriptor|` +
		// LVM: a logical volume or volume group named.
		`logical volume|volume group)`)
	digitsRE = regexp.MustCompile(`0x[0-9a-fA-F]+|[0-9a-f]{12,}|\d+`)
	quoteRE  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// ErrorKind sorts an error line: "located" (names an offset, inode, page,
// LBA or block), "record" (names a containerd record or partition) or
// "unlocated".
func ErrorKind(line string) string {
	switch {
	case locatedRE.MatchString(line):
		return "located"
	case recordRE.MatchString(line):
		return "record"
	}
	return "unlocated"
}

// Template reduces an error line to its shape, for counting.
func Template(line string) string {
	t := quoteRE.ReplaceAllString(line, `"…"`)
	return digitsRE.ReplaceAllString(t, "N")
}

// Tally counts variants per class and outcome.
type Tally struct {
	Classes  map[string]map[string]int
	Errors   map[string]*ErrStat // by template
	Failures []*Result
	Runaways []*Result // the first variants whose export ran into the file size limit
	Slowest  []Run
	PeakRSS  int64
	Runs     int
	Skipped  map[string]int
	// Worker time spent in variants and, of that, in ctrlift runs.
	VariantWall, RunWall time.Duration
	RunCPU               time.Duration // ctrlift's own CPU time
	ByCommand            map[string]*CommandStat
}

// CommandStat sums the runs of one command.
type CommandStat struct {
	Runs      int
	Wall, CPU time.Duration
}

// ErrStat counts one error template.
type ErrStat struct {
	Kind    string
	Count   int
	Example string
	Variant string
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{Classes: map[string]map[string]int{}, Errors: map[string]*ErrStat{}, Skipped: map[string]int{}, ByCommand: map[string]*CommandStat{}}
}

// Add records a result.
func (t *Tally) Add(r *Result) {
	c := t.Classes[r.V.Class]
	if c == nil {
		c = map[string]int{}
		t.Classes[r.V.Class] = c
	}
	c[r.Outcome]++
	t.VariantWall += r.Wall
	if Failed(r.Outcome) {
		t.Failures = append(t.Failures, r)
	}
	if r.Outcome == OutcomeRunaway && len(t.Runaways) < 20 {
		t.Runaways = append(t.Runaways, r)
	}
	for _, run := range r.Runs {
		t.Runs++
		t.RunWall += run.Wall
		name := run.Args[0]
		if name == "list" || name == "info" {
			name += " " + run.Args[1]
		}
		cs := t.ByCommand[name]
		if cs == nil {
			cs = &CommandStat{}
			t.ByCommand[name] = cs
		}
		cs.Runs++
		cs.Wall += run.Wall
		cs.CPU += run.CPU
		t.RunCPU += run.CPU
		t.PeakRSS = max(t.PeakRSS, run.MaxRSS)
		t.Slowest = append(t.Slowest, run)
		if len(t.Slowest) > 50 {
			sort.Slice(t.Slowest, func(i, j int) bool { return t.Slowest[i].Wall > t.Slowest[j].Wall })
			t.Slowest = t.Slowest[:10]
		}
		if run.ErrLine == "" {
			continue
		}
		for _, l := range strings.Split(run.ErrLine, "\n") {
			k := Template(l)
			s := t.Errors[k]
			if s == nil {
				s = &ErrStat{Kind: ErrorKind(l), Example: l, Variant: r.V.String()}
				t.Errors[k] = s
			}
			s.Count++
		}
	}
}

// Table renders the per-class outcome table in Markdown.
func (t *Tally) Table() string {
	var b strings.Builder
	cols := []string{OutcomeOK, OutcomeError, OutcomeRunaway, OutcomePanic, OutcomeTimeout, OutcomeMemory, OutcomeUnclear, OutcomeOutput, OutcomeWrite, OutcomeEscape, OutcomeCrash}
	fmt.Fprintf(&b, "| class | variants | %s |\n|---|---:|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
	names := make([]string, 0, len(t.Classes))
	for _, c := range Classes {
		if _, ok := t.Classes[c.Name]; ok {
			names = append(names, c.Name)
		}
	}
	total := map[string]int{}
	all := 0
	for _, n := range names {
		row := t.Classes[n]
		sum := 0
		for _, v := range row {
			sum += v
		}
		all += sum
		fmt.Fprintf(&b, "| %s | %d |", n, sum)
		for _, c := range cols {
			fmt.Fprintf(&b, " %d |", row[c])
			total[c] += row[c]
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "| **total** | %d |", all)
	for _, c := range cols {
		fmt.Fprintf(&b, " %d |", total[c])
	}
	b.WriteString("\n")
	return b.String()
}

// ErrorReport lists error templates by kind, most frequent first.
func (t *Tally) ErrorReport(kinds ...string) string {
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	type row struct {
		tmpl string
		s    *ErrStat
	}
	var rows []row
	for k, s := range t.Errors {
		if len(want) == 0 || want[s.Kind] {
			rows = append(rows, row{k, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].s.Count != rows[j].s.Count {
			return rows[i].s.Count > rows[j].s.Count
		}
		return rows[i].tmpl < rows[j].tmpl
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%6d %-9s %s\n       e.g. %s\n       from %s\n", r.s.Count, r.s.Kind, clip(r.tmpl, 240), clip(r.s.Example, 240), clip(r.s.Variant, 240))
	}
	return b.String()
}
