package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestLogsExample: the example's apache-exporter sidecar crashed twice
// (exit 2). Its two restarts are two containers; "logs POD/NAME" shows
// the output of both, and it is the files' own content: each record's
// text, in order, read back with "fs cat" from the log paths the
// containers' CRI metadata name.
func TestLogsExample(t *testing.T) {
	img := exampleDisk(t)
	const ref = "blog/wordpress-6d8f7b9c5-q2lzx/apache-exporter"
	out, errOut, err := run(t, "logs", "-i", img, ref)
	if err != nil {
		t.Fatal(err, errOut)
	}
	if !strings.Contains(errOut, "10 lines from 2 files of var/log/pods/blog_wordpress-6d8f7b9c5-q2lzx_7c1e4b2a-5d3f-4e8a-9b6c-2f1a0d9e8c7b/apache-exporter (restarts 0, 1)") {
		t.Errorf("stderr: %s", errOut)
	}
	// The oracle: the log files as the partition holds them.
	var want strings.Builder
	ids := map[string]string{}
	for _, id := range []string{"a03b0bde54af", "4d9b23b2baa8"} { // restart 0, restart 1
		info, _, err := run(t, "info", "container", "-q", "-i", img, id)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			ID      string `json:"id"`
			LogPath string `json:"log_path"`
		}
		if err := json.Unmarshal([]byte(info), &c); err != nil || c.LogPath == "" {
			t.Fatalf("%s: %v %q", id, err, c.LogPath)
		}
		ids[c.LogPath] = c.ID
		file, _, err := run(t, "fs", "cat", "-q", "-i", img, c.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(file, "\n"), "\n") {
			f := strings.SplitN(l, " ", 4)
			if len(f) != 4 || f[2] != "F" {
				t.Fatalf("%s: not a full CRI record: %q", c.LogPath, l)
			}
			want.WriteString(f[3] + "\n")
		}
	}
	if out != want.String() {
		t.Errorf("logs:\n%s\nthe files:\n%s", out, want.String())
	}
	if strings.Count(out, "too many consecutive scrape failures, exiting") != 2 {
		t.Errorf("not both restarts' exits:\n%s", out)
	}

	jl, _, err := run(t, "logs", "-q", "-i", img, ref, "-o", "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var restarts []int
	streams := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(jl, "\n"), "\n") {
		var r logJSON
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Time == "" || r.Pod != "wordpress-6d8f7b9c5-q2lzx" || r.Container != "apache-exporter" || r.K8sNamespace != "blog" || r.PodUID == "" {
			t.Errorf("context: %s", l)
		}
		if ids["/"+r.File] != r.ContainerID {
			t.Errorf("restart %d of %s: container %s", r.Restart, r.File, r.ContainerID)
		}
		if !slices.Contains(restarts, r.Restart) {
			restarts = append(restarts, r.Restart)
		}
		streams[r.Stream]++
	}
	if !slices.Equal(restarts, []int{0, 1}) || streams["stdout"] != 2 || streams["stderr"] != 8 {
		t.Errorf("restarts %v, streams %v", restarts, streams)
	}

	// Filters: one stream; a time window (restart 1 started at 09:01:31).
	so, _, err := run(t, "logs", "-q", "-i", img, ref, "--stream", "stdout")
	if err != nil || strings.Count(so, "Starting apache_exporter") != 2 || strings.Count(so, "\n") != 2 {
		t.Errorf("--stream stdout: %v\n%s", err, so)
	}
	since, _, err := run(t, "logs", "-q", "-i", img, ref, "--since", "2026-11-27T09:01:31Z", "--until", "2026-11-27T09:01:33.447263063Z")
	if err != nil || strings.Count(since, "\n") != 3 {
		t.Errorf("--since/--until: %v\n%s", err, since)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--stream", "stdin"}, {"-o", "json"}} {
		if _, _, err := run(t, append([]string{"logs", "-i", img, ref}, bad...)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
