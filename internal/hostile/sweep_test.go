//go:build linux

package hostile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/internal/testutil"
)

// Environment knobs of the sweep (see SECURITY.md):
//
//	CTRLIFT_HOSTILE_PER_CLASS at least this many variants of every class; the
//	                          sweep grows with the classes, so a class added later
//	                          never thins out the others (default 2: one round of
//	                          the schedule, go test's quick sample; .ci/run sets 34,
//	                          the full sweep)
//	CTRLIFT_HOSTILE_VARIANTS  number of variants instead (40 with -short)
//	CTRLIFT_HOSTILE_SEED      seed (default 1); variant i is the same for a seed and set of bases
//	CTRLIFT_HOSTILE_ONLY      comma-separated variant indexes to run, e.g. to replay a failure
//	CTRLIFT_HOSTILE_CLASS     run only these classes (comma-separated)
//	CTRLIFT_HOSTILE_BASE      run only on these bases (comma-separated)
//	CTRLIFT_HOSTILE_KEEP      directory to copy failing variant images into
//	CTRLIFT_HOSTILE_REPORT    file to write the Markdown report to
//	CTRLIFT_HOSTILE_WORKERS   parallel workers (default 2 x GOMAXPROCS)
//	CTRLIFT_HOSTILE_LOG       log every variant and its outcome
//	CTRLIFT_HOSTILE_STRICT    0: do not fail on error messages that name no offset, inode or record
func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

func envSet(name string) map[string]bool {
	s := os.Getenv(name)
	if s == "" {
		return nil
	}
	m := map[string]bool{}
	for _, x := range strings.Split(s, ",") {
		m[strings.TrimSpace(x)] = true
	}
	return m
}

// scratch returns a directory for the sweep that the unprivileged
// children can reach (t.TempDir's parent is private).
func scratch(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ctrlift-hostile-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// defaultConfig is how the sweep runs ctrlift: 10 s, 512 MiB peak RSS,
// 1.5 GiB of output, as nobody when root.
func defaultConfig(bin, limiter string) *Config {
	cfg := &Config{
		Bin: bin, Limiter: limiter, Timeout: 10 * time.Second, MaxRSS: 512 << 20,
		// An export is bounded by its filesystem's size plus 256 MiB of
		// holes written as zeros (SECURITY.md); the largest fixture
		// filesystem, cos-node's STATE, is 1 GiB.
		AddrSpace: 4 << 30, FileSize: 1536 << 20, UID: -1, GID: -1, MaxCtrs: 32,
	}
	if os.Geteuid() == 0 {
		cfg.UID, cfg.GID = 65534, 65534 // nobody
	}
	return cfg
}

// build compiles ctrlift and the limit helper into dir.
func build(t *testing.T, dir string) (bin, limiter string) {
	root := testutil.RepoRoot(t)
	bin, limiter = filepath.Join(dir, "ctrlift"), filepath.Join(dir, "limitexec")
	for out, pkg := range map[string]string{bin: "./cmd/ctrlift", limiter: "./internal/hostile/limitexec"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return bin, limiter
}

// baseSpec is a fixture the variants start from.
type baseSpec struct {
	name, kind string
	zst        string // compressed source
	carve      bool   // use the STATE partition alone, as a bare filesystem
	weight     int
	optional   bool // under ../shared
}

func baseSpecs(t *testing.T) []baseSpec {
	root := testutil.RepoRoot(t)
	shared := filepath.Join(root, "..", "shared", "fixtures", "cos-node")
	ex := filepath.Join(root, "testdata", "images", "example", "wordpress-node.raw.zst")
	specs := []baseSpec{
		{"example-disk", KindContainerd, ex, false, 6, false},
		{"example-state", KindContainerd, ex, true, 10, false},
		{"cos-state", KindContainerd, filepath.Join(shared, "cos-node.raw.zst"), true, 3, true},
		{"cos-live-state", KindContainerd, filepath.Join(shared, "cos-node-live.raw.zst"), true, 2, true},
		// The example's containerd root as GNU tar packed it: tar input.
		{"example-tree", KindTree, filepath.Join(root, "testdata", "images", "tar", "example-containerd.tar.zst"), false, 4, false},
		// A Docker Engine root dockerd 20.10 wrote (testdata/images/docker).
		{"docker-disk", KindDocker, filepath.Join(root, "testdata", "images", "docker", "docker-node.raw.zst"), false, 3, false},
		// Podman's rootful and rootless stores (testdata/images/cstorage).
		{"podman-disk", KindCStorage, filepath.Join(root, "testdata", "images", "cstorage", "podman-node.raw.zst"), false, 2, false},
		// Podman 5's stores and SQLite db.sql (testdata/images/cstorage/podman5).
		{"podman5-disk", KindCStorage, filepath.Join(root, "testdata", "images", "cstorage", "podman5", "podman5-node.raw.zst"), false, 1, false},
		// The example's STATE on a linear LVM logical volume (lvm2 made it).
		{"example-lvm", KindContainerd, filepath.Join(root, "testdata", "images", "lvm", "node-lvm-linear.raw.zst"), false, 1, false},
		// The example's containerd root on an EKS-like XFS root (GPT).
		{"eks-xfs", KindContainerd, filepath.Join(root, "testdata", "images", "xfs", "eks-node.raw.zst"), false, 3, false},
	}
	globs := []struct{ pattern, kind, suffix string }{
		{filepath.Join(root, "testdata", "images", "ext4", "*.img.zst"), KindExt4, ".img.zst"},
		{filepath.Join(root, "image", "ext4", "testdata", "*.img.zst"), KindExt4, ".img.zst"},
		{filepath.Join(root, "testdata", "images", "disk", "*.raw.zst"), KindTable, ".raw.zst"},
		// Bare XFS filesystems holding every directory, attribute, extent
		// map and symlink form (exported whole, like the ext4 images).
		{filepath.Join(root, "testdata", "images", "xfs", "xfs-[d1v]*.img.zst"), KindExt4, ".img.zst"},
	}
	for _, g := range globs {
		files, _ := filepath.Glob(g.pattern)
		sort.Strings(files)
		for _, f := range files {
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				continue // being regenerated
			}
			specs = append(specs, baseSpec{strings.TrimSuffix(filepath.Base(f), g.suffix), g.kind, f, false, 1, false})
		}
	}
	return specs
}

// openBases decompresses and maps every available fixture.
func openBases(t *testing.T, dir string, only map[string]bool) ([]*Base, []int) {
	var bases []*Base
	var weights []int
	for _, s := range baseSpecs(t) {
		if only != nil && !only[s.name] {
			continue
		}
		if _, err := os.Stat(s.zst); err != nil {
			if s.optional {
				t.Logf("base %s: %s not present, skipped", s.name, s.zst)
				continue
			}
			t.Fatal(err)
		}
		raw := testutil.Unzstd(t, s.zst)
		path := raw
		if s.carve {
			path = filepath.Join(dir, s.name+".img")
			if err := carveState(raw, path); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		b, err := OpenBase(s.name, s.kind, path)
		if err != nil {
			t.Fatalf("base %s: %v", s.name, err)
		}
		t.Cleanup(func() { b.Close() })
		bases = append(bases, b)
		weights = append(weights, s.weight)
	}
	// The evidence formats, made from the example by qemu-img and
	// ewfacquire; without them their classes are skipped.
	for _, f := range EvidenceFormats {
		name := "ev-" + f
		if only != nil && !only[name] {
			continue
		}
		s, missing := EvidenceSpecFor(t, f)
		if s == nil {
			t.Logf("base %s: %s not installed, skipped (and the classes that aim at it)", name, missing)
			continue
		}
		b, err := OpenEvidenceBase(s)
		if err != nil {
			t.Fatalf("base %s: %v", name, err)
		}
		t.Cleanup(func() { b.Close() })
		bases = append(bases, b)
		weights = append(weights, 1)
	}
	return bases, weights
}

// carveState copies the STATE partition of a disk into a file of its own.
func carveState(disk, dst string) error {
	b, err := OpenBase("carve", KindTable, disk)
	if err != nil {
		return err
	}
	defer b.Close()
	if b.FS == nil {
		return fmt.Errorf("%s: no STATE filesystem", disk)
	}
	return CopySparse(dst, b.f, b.FS.Off, b.FSSize)
}

// schedule spreads the classes over the variant indexes by weight.
func schedule(classes []Class) []Class {
	var s []Class
	for round := 0; ; round++ {
		added := false
		for _, c := range classes {
			if round < c.Weight {
				s = append(s, c)
				added = true
			}
		}
		if !added {
			return s
		}
	}
}

// variantsFor is the smallest number of variants from the start of the
// schedule that gives every class at least perClass of them. A class added
// later only inserts its own entries between the others', so every other
// class keeps at least the variants it had.
func variantsFor(classes []Class, perClass int) int {
	need := 0
	for _, c := range classes {
		if c.Weight > 0 {
			need++
		}
	}
	if need == 0 || perClass <= 0 {
		return 0
	}
	sched := schedule(classes)
	count := map[string]int{}
	for i := 0; ; i++ {
		c := sched[i%len(sched)]
		count[c.Name]++
		if count[c.Name] == perClass {
			if need--; need == 0 {
				return i + 1
			}
		}
	}
}

// variantAt builds variant i: its class comes from the schedule, its base
// is drawn by weight among the bases the class applies to.
func variantAt(seed uint64, i int, sched []Class, bases []*Base, weights []int) *Variant {
	c := sched[i%len(sched)]
	var cand []int
	total := 0
	for j, b := range bases {
		if c.AppliesTo(b) {
			cand = append(cand, j)
			total += weights[j]
		}
	}
	if len(cand) == 0 {
		return nil
	}
	probe := NewVariant(seed, i, c.Name, bases[cand[0]])
	x := probe.R.IntN(total)
	first := 0
	for k, j := range cand {
		if x < weights[j] {
			first = k
			break
		}
		x -= weights[j]
	}
	// A base where the class finds nothing to aim at passes to the next.
	for k := range cand {
		b := bases[cand[(first+k)%len(cand)]]
		v := NewVariant(seed, i, c.Name, b)
		v.R.IntN(total) // same stream position as the probe
		c.Gen(v)
		if !v.Skip {
			return v
		}
	}
	return nil
}

func TestSweep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the harness uses Linux rlimits, SEEK_DATA and memfd")
	}
	seed := uint64(envInt(t, "CTRLIFT_HOSTILE_SEED", 1))
	// Two workers per CPU: a run waits on I/O about half of its time.
	workers := envInt(t, "CTRLIFT_HOSTILE_WORKERS", 2*runtime.GOMAXPROCS(0))
	dir := scratch(t)
	bin, limiter := build(t, dir)
	cfg := defaultConfig(bin, limiter)
	bases, weights := openBases(t, dir, envSet("CTRLIFT_HOSTILE_BASE"))
	var names []string
	for _, b := range bases {
		names = append(names, fmt.Sprintf("%s(%s, %d containers)", b.Name, b.Kind, len(b.Containers)))
	}
	t.Logf("bases: %s", strings.Join(names, ", "))
	classes := Classes
	if only := envSet("CTRLIFT_HOSTILE_CLASS"); only != nil {
		classes = nil
		for _, c := range Classes {
			if only[c.Name] {
				classes = append(classes, c)
			}
		}
	}
	// go test ./... runs a sample, every class once (52 variants, about
	// 40 s on 2 cores); .ci/run runs the full sweep after it with
	// CTRLIFT_HOSTILE_PER_CLASS=34.
	// Counted over the classes selected, so CTRLIFT_HOSTILE_PER_CLASS
	// combines with CTRLIFT_HOSTILE_CLASS.
	n := variantsFor(classes, envInt(t, "CTRLIFT_HOSTILE_PER_CLASS", 1))
	n = envInt(t, "CTRLIFT_HOSTILE_VARIANTS", n)
	if testing.Short() && os.Getenv("CTRLIFT_HOSTILE_VARIANTS") == "" && os.Getenv("CTRLIFT_HOSTILE_PER_CLASS") == "" {
		n = 40
	}
	sched := schedule(classes)
	indexes := make([]int, 0, n)
	if only := envSet("CTRLIFT_HOSTILE_ONLY"); only != nil {
		for s := range only {
			i, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			indexes = append(indexes, i)
		}
		sort.Ints(indexes)
	} else {
		for i := 0; i < n; i++ {
			indexes = append(indexes, i)
		}
	}
	keep := os.Getenv("CTRLIFT_HOSTILE_KEEP")
	logAll := os.Getenv("CTRLIFT_HOSTILE_LOG") != ""

	selfAtStart, childAtStart := cpuTimes()
	tally := NewTally()
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < workers; k++ {
		w, err := NewWorker(cfg, filepath.Join(dir, fmt.Sprintf("w%d", k)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for i := range jobs {
				v := variantAt(seed, i, sched, bases, weights)
				if v == nil {
					mu.Lock()
					tally.Skipped[sched[i%len(sched)].Name]++
					mu.Unlock()
					continue
				}
				r := w.Check(v)
				if (Failed(r.Outcome) || r.Outcome == OutcomeRunaway) && keep != "" {
					saveVariant(t, keep, v)
				}
				mu.Lock()
				tally.Add(r)
				if logAll {
					t.Logf("%s: %s (%d runs, %v)", r.Outcome, r.V, len(r.Runs), r.Wall.Round(time.Millisecond))
				}
				mu.Unlock()
			}
		}()
	}
	// Stop handing out variants a minute before go test's deadline, so a
	// slow machine gets a report and a clear failure instead of a panic.
	stop := time.Time{}
	if d, ok := t.Deadline(); ok {
		stop = d.Add(-time.Minute)
	}
	sent := 0
	for _, i := range indexes {
		if !stop.IsZero() && time.Now().After(stop) {
			break
		}
		jobs <- i
		sent++
	}
	close(jobs)
	wg.Wait()
	if sent < len(indexes) {
		// CI must run them all; a developer's loaded machine gets a note.
		msg := fmt.Sprintf("ran %d of %d variants before the test deadline: raise -timeout (the sweep takes 5-10 min on 2 idle cores)", sent, len(indexes))
		if os.Getenv("CI") != "" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	elapsed := time.Since(start)

	report := fmt.Sprintf("ctrlift hostile-input sweep: seed %d, %d variants, %d runs, %d workers, %v; peak RSS %d MiB\n\n%s",
		seed, sent, tally.Runs, workers, elapsed.Round(time.Second), tally.PeakRSS>>20, tally.Table())
	selfCPU, childCPU := cpuTimes()
	report += fmt.Sprintf("\nworker time: %v in variants, %v of it in ctrlift runs (%v per run)\nCPU time: ctrlift %v, limitexec %v, harness %v\n",
		tally.VariantWall.Round(time.Second), tally.RunWall.Round(time.Second), (tally.RunWall / time.Duration(max(tally.Runs, 1))).Round(time.Millisecond),
		tally.RunCPU.Round(time.Second), (childCPU - childAtStart - tally.RunCPU).Round(time.Second), (selfCPU - selfAtStart).Round(time.Second))
	for _, name := range sortedKeys(tally.ByCommand) {
		cs := tally.ByCommand[name]
		report += fmt.Sprintf("  %-16s %6d runs, %v wall and %v CPU each\n", name, cs.Runs, (cs.Wall / time.Duration(cs.Runs)).Round(time.Millisecond), (cs.CPU / time.Duration(cs.Runs)).Round(time.Millisecond))
	}
	if len(tally.Skipped) > 0 {
		report += fmt.Sprintf("\nskipped (no target on any base): %v\n", tally.Skipped)
	}
	report += "\nslowest runs:\n"
	sort.Slice(tally.Slowest, func(i, j int) bool { return tally.Slowest[i].Wall > tally.Slowest[j].Wall })
	for i, r := range tally.Slowest {
		if i == 5 {
			break
		}
		report += fmt.Sprintf("  %v %d MiB ctrlift %s\n", r.Wall.Round(time.Millisecond), r.MaxRSS>>20, clip(strings.Join(r.Args, " "), 200))
	}
	if len(tally.Runaways) > 0 {
		report += "\nruns that hit the file size limit:\n"
		for _, r := range tally.Runaways {
			for _, run := range r.Runs {
				if run.Outcome == OutcomeRunaway {
					report += fmt.Sprintf("  %s\n    %s\n", clip(r.V.String(), 300), run.Problem)
					break
				}
			}
		}
	}
	report += "\nerror messages that name no offset, inode or record:\n" + tally.ErrorReport("unlocated")
	if testing.Verbose() || os.Getenv("CTRLIFT_HOSTILE_REPORT") != "" {
		report += "\nall error messages:\n" + tally.ErrorReport()
	}
	t.Log("\n" + report)
	if p := os.Getenv("CTRLIFT_HOSTILE_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	sort.Slice(tally.Failures, func(i, j int) bool { return tally.Failures[i].V.Index < tally.Failures[j].V.Index })
	for i, f := range tally.Failures {
		if i == 40 {
			t.Errorf("... and %d more failures", len(tally.Failures)-i)
			break
		}
		probs := f.Problems
		if len(probs) > 3 {
			probs = append(probs[:3:3], fmt.Sprintf("(%d more)", len(f.Problems)-3))
		}
		t.Errorf("%s: %s\n  %s\n  replay: CTRLIFT_HOSTILE_SEED=%d CTRLIFT_HOSTILE_ONLY=%d go test ./internal/hostile -run TestSweep -v",
			f.Outcome, f.V, strings.Join(probs, "\n  "), seed, f.V.Index)
	}
	if os.Getenv("CTRLIFT_HOSTILE_STRICT") != "0" {
		if s := tally.ErrorReport("unlocated"); s != "" {
			t.Errorf("error messages without a location:\n%s", s)
		}
	}
}

// cpuTimes returns the CPU time of this process and of its waited-for
// children (limitexec, which includes the ctrlift it waited for).
func cpuTimes() (self, children time.Duration) {
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	return time.Duration(s.Utime.Nano() + s.Stime.Nano()), time.Duration(c.Utime.Nano() + c.Stime.Nano())
}

// saveVariant writes the variant image into dir for a closer look.
func saveVariant(t *testing.T, dir string, v *Variant) {
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, fmt.Sprintf("variant-%d-%s-%s.img", v.Index, v.Class, v.Base.Name))
	if v.Base.Set != nil {
		p = strings.TrimSuffix(p, ".img") // a directory holding the set
		os.RemoveAll(p)
	}
	if err := v.WriteFile(p); err != nil {
		t.Log(err)
		return
	}
	os.WriteFile(p+".txt", []byte(v.String()+"\n"), 0o644)
}

func TestVariantsFor(t *testing.T) {
	counts := func(classes []Class, n int) map[string]int {
		sched := schedule(classes)
		count := map[string]int{}
		for i := 0; i < n; i++ {
			count[sched[i%len(sched)].Name]++
		}
		return count
	}
	more := append(append([]Class{}, Classes...), Class{Name: "new", Weight: 1})
	for _, per := range []int{1, 2, 34, 50} {
		before := counts(Classes, variantsFor(Classes, per))
		after := counts(more, variantsFor(more, per))
		for _, c := range more {
			if after[c.Name] < per {
				t.Errorf("per class %d: %s has %d variants", per, c.Name, after[c.Name])
			}
			// A class added later leaves every other class its variants.
			if after[c.Name] < before[c.Name] {
				t.Errorf("per class %d: a new class took %s from %d to %d variants", per, c.Name, before[c.Name], after[c.Name])
			}
		}
	}
}
