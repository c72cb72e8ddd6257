package cstorage

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podman5DB is the rootful db.sql Podman 5 wrote on the podman5 fixture.
func podman5DB(t testing.TB) []byte {
	t.Helper()
	fsys := podmanNodeAt(t, filepath.Join(fixtureDir(t), "podman5", "podman5-node.raw.zst"))
	b, err := fs.ReadFile(fsys, "var/lib/containers/storage/db.sql")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readPodmanSQLiteBytes reads data as a db.sql from a file of its own.
func readPodmanSQLiteBytes(t testing.TB, data []byte) (*PodmanState, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "db.sql")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return readPodmanSQLite("s/db.sql", file)
}

// checkSQLiteResult is what every input must give: a one-line error that
// names db.sql, or a state whose containers and pods have ids for keys.
func checkSQLiteResult(t testing.TB, ps *PodmanState, err error) {
	t.Helper()
	if err != nil {
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "db.sql") {
			t.Fatalf("error %q", err)
		}
		return
	}
	for id, c := range ps.Containers {
		if !ValidID(id) || c.ID != id {
			t.Fatalf("kept container %q", id)
		}
	}
	for id := range ps.Pods {
		if !ValidID(id) {
			t.Fatalf("kept pod %q", id)
		}
	}
	for _, w := range ps.Warnings {
		if strings.Contains(w, "\n") {
			t.Fatalf("multi-line warning %q", w)
		}
	}
	if _, err := json.Marshal(ps); err != nil {
		t.Fatalf("does not encode: %v", err)
	}
}

// Damaged databases give one-line errors naming db.sql or warnings: pages
// overwritten, the file cut short, a schema that is not Podman's, a row
// far over the size accepted, a database that is no database.
func TestPodmanSQLiteHostile(t *testing.T) {
	orig := podman5DB(t)
	pageSize := int(orig[16])<<8 | int(orig[17])
	if pageSize == 1 {
		pageSize = 65536
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), orig...)) }
	// A huge row: SQLite itself makes one container's config 5 MiB on a
	// copy of the real database.
	huge := func() []byte {
		file := filepath.Join(t.TempDir(), "db.sql")
		if err := os.WriteFile(file, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+file)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE ContainerConfig SET JSON = JSON || printf('%5000000s', '') WHERE ID = (SELECT min(ID) FROM ContainerConfig)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	cases := []struct {
		name    string
		data    []byte
		wantErr string // "" when the state reads, with warnWant among its warnings
		warn    string
	}{
		{"not a database", []byte("SQLite format 2\x00 and then nothing of use"), "db.sql", ""},
		{"empty", nil, "no such table", ""},
		{"cut to one page", orig[:pageSize], "db.sql", ""},
		{"pages zeroed", mutate(func(b []byte) []byte {
			for i := pageSize; i < len(b); i++ {
				b[i] = 0
			}
			return b
		}), "db.sql", ""},
		{"schema renamed", mutate(func(b []byte) []byte {
			// Every ContainerConfig of the schema (its row, its SQL, its
			// index, the foreign keys naming it) made ContainerConfiX.
			return bytes.ReplaceAll(b, []byte("ContainerConfig"), []byte("ContainerConfiX"))
		}), "no such table: ContainerConfig", ""},
		{"column renamed", mutate(func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("PodID "), []byte("PodIX "))
		}), "malformed database schema", ""},
		{"huge row", huge, "", "exceeds the 4194304-byte limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps, err := readPodmanSQLiteBytes(t, c.data)
			checkSQLiteResult(t, ps, err)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(ps.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q, want %q", ps.Warnings, c.warn)
			}
			if len(ps.Containers) == 0 {
				t.Errorf("no container read beside the huge row")
			}
		})
	}
}

// Bytes of the real database overwritten at random, 200 times over (a
// fixed seed): each read ends within the time bound with a one-line error
// or a state keyed by ids. Go's fuzzer runs FuzzPodmanSQLite below slowly
// (it instruments the transpiled SQLite too), so this sweep runs always.
func TestPodmanSQLiteMutations(t *testing.T) {
	orig := podman5DB(t)
	r := rand.New(rand.NewPCG(1, 2))
	read := 0
	for i := 0; i < 200; i++ {
		b := append([]byte(nil), orig...)
		for j := 0; j < 1+r.IntN(20); j++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		start := time.Now()
		ps, err := readPodmanSQLiteBytes(t, b)
		if d := time.Since(start); d > 2*podmanSQLiteTime {
			t.Fatalf("variant %d took %v", i, d)
		}
		checkSQLiteResult(t, ps, err)
		if err == nil {
			read++
		}
	}
	t.Logf("%d of 200 variants read", read)
}

// FuzzPodmanSQLite reads arbitrary bytes as db.sql: never a panic or a
// hang; a one-line error naming db.sql, or containers and pods keyed by
// ids. Seeded with the fixture's real database.
func FuzzPodmanSQLite(f *testing.F) {
	f.Add(podman5DB(f))
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		ps, err := readPodmanSQLiteBytes(t, data)
		if d := time.Since(start); d > 2*podmanSQLiteTime {
			t.Fatalf("took %v", d)
		}
		checkSQLiteResult(t, ps, err)
	})
}

// BenchmarkPodmanState reads the rootful store's Podman state of each
// fixture: Podman 4's bolt_state.db (guarded bbolt) and Podman 5's db.sql
// (private copy, pure-Go SQLite open, five queries), the same scenario's
// containers, pods and volumes. Compare the two lines of one run.
func BenchmarkPodmanState(b *testing.B) {
	for _, fx := range []struct{ name, disk string }{
		{"boltdb", filepath.Join(fixtureDir(b), "podman-node.raw.zst")},
		{"sqlite", filepath.Join(fixtureDir(b), "podman5", "podman5-node.raw.zst")},
	} {
		fsys := podmanNodeAt(b, fx.disk)
		b.Run(fx.name, func(b *testing.B) {
			for b.Loop() {
				ps, err := loadPodman(fsys, "var/lib/containers/storage")
				if err != nil || ps == nil || len(ps.Containers) != 6 {
					b.Fatalf("%v %v", ps, err)
				}
			}
		})
	}
}
