package cstorage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctrlift/ctrlift/internal/overlaystore"

	// Pure-Go SQLite: database/sql driver "sqlite".
	_ "modernc.org/sqlite"
)

// Podman 5 keeps its state in SQLite: db.sql in the store's graph root
// (or its libpod directory, where a static directory set apart puts it),
// in rollback-journal mode (db.sql-journal beside it mid-transaction;
// db.sql-wal and db.sql-shm if someone switched it to WAL mode). The
// tables (libpod/sqlite_state_internal.go, schema version 1) hold the same
// JSON documents as bolt_state.db's buckets: ContainerConfig(ID, Name,
// PodID, JSON), ContainerState(ID, State, ExitCode, JSON), PodConfig(ID,
// Name, JSON), PodState(ID, InfraContainerID, JSON), VolumeConfig(Name,
// StorageID, JSON) and DBConfig (the runtime's paths).
//
// SQLite never opens the evidence: db.sql, db.sql-journal and db.sql-wal
// are copied into a private temporary directory first (even a reader
// rolls a hot journal back, writes a -shm index and checkpoints the WAL),
// and the copy is what the driver opens. The evidence's -shm is not
// copied: it is only an index of the WAL, and the first connection
// rebuilds it from the WAL.

const (
	// maxPodmanSQLiteFile bounds db.sql and db.sql-wal: Podman's are a
	// few MiB for hundreds of containers.
	maxPodmanSQLiteFile = 256 << 20
	// maxPodmanSQLiteDoc bounds one JSON column: a container's config with
	// its OCI spec is tens of KiB.
	maxPodmanSQLiteDoc = 4 << 20
	// maxPodmanSQLiteRows bounds the rows read from one table.
	maxPodmanSQLiteRows = 100000
	// podmanSQLiteTime bounds the queries on a damaged database.
	podmanSQLiteTime = 5 * time.Second
	// podmanSQLiteHeap is SQLite's hard heap limit while reading.
	podmanSQLiteHeap    = 256 << 20
	podmanSchemaVersion = 1
)

// loadPodmanSQLite reads the db.sql of the store at root: nil, nil when
// there is none.
func loadPodmanSQLite(fsys fs.FS, root string) (*PodmanState, error) {
	for _, dbPath := range []string{path.Join(root, "db.sql"), path.Join(root, "libpod", "db.sql")} {
		if _, err := fs.Stat(fsys, dbPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", dbPath, err)
		}
		dir, err := os.MkdirTemp("", "ctrlift-podman-db-")
		if err != nil {
			return nil, fmt.Errorf("%s: private copy: %w", dbPath, err)
		}
		defer os.RemoveAll(dir)
		copied := filepath.Join(dir, "db.sql")
		if err := copyPodmanDBFile(fsys, dbPath, copied, true); err != nil {
			return nil, err
		}
		// Podman writes in rollback-journal mode: a db.sql-journal left by a
		// podman that died mid-transaction is rolled back on opening, as
		// Podman itself would; a database switched to WAL mode has its
		// committed transactions in db.sql-wal.
		for _, side := range []string{"-journal", "-wal"} {
			if err := copyPodmanDBFile(fsys, dbPath+side, copied+side, false); err != nil {
				return nil, err
			}
		}
		return readPodmanSQLite(dbPath, copied)
	}
	return nil, nil
}

// copyPodmanDBFile copies name out of fsys into dst, bounded; a missing
// file is fine unless required.
func copyPodmanDBFile(fsys fs.FS, name, dst string, required bool) error {
	f, err := fsys.Open(name)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", name)
	}
	if st.Size() > maxPodmanSQLiteFile {
		return fmt.Errorf("%s: %d bytes exceeds the %d-byte limit", name, st.Size(), maxPodmanSQLiteFile)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%s: private copy: %w", name, err)
	}
	_, err = io.Copy(out, io.LimitReader(f, maxPodmanSQLiteFile+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: private copy: %w", name, err)
	}
	return nil
}

// sqliteError is a driver error as one line naming the database.
func sqliteError(dbPath, what string, err error) error {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "interrupted") {
		msg = fmt.Sprintf("gave up after %v (a damaged database?)", podmanSQLiteTime)
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return fmt.Errorf("%s: %s: %s", dbPath, what, msg)
}

// readPodmanSQLite reads the private copy at file of the database found
// at dbPath (the name errors and warnings give).
func readPodmanSQLite(dbPath, file string) (*PodmanState, error) {
	// query_only: nothing but the WAL recovery SQLite does on opening
	// writes even the copy; trusted_schema off: no function a view or
	// trigger names runs; cell_size_check: damaged pages are found
	// earlier; mmap_size 0: reads go through the checked pager.
	dsn := "file:" + filepath.ToSlash(file) + "?_pragma=query_only(1)&_pragma=trusted_schema(0)" +
		"&_pragma=cell_size_check(1)&_pragma=mmap_size(0)&_pragma=foreign_keys(0)" +
		fmt.Sprintf("&_pragma=hard_heap_limit(%d)", podmanSQLiteHeap)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, sqliteError(dbPath, "open", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), podmanSQLiteTime)
	defer cancel()
	ps := &PodmanState{DB: dbPath, Backend: "sqlite", Containers: map[string]*PodmanContainer{},
		Pods: map[string]*PodmanPod{}, Volumes: map[string]*PodmanVolume{}}
	warn := func(format string, a ...any) {
		ps.Warnings = append(ps.Warnings, dbPath+": "+fmt.Sprintf(format, a...))
	}

	var (
		version                                                           int64
		osName, staticDir, tmpDir, graphRoot, runRoot, driver, volumePath sql.NullString
	)
	err = db.QueryRowContext(ctx, `SELECT SchemaVersion, OS, StaticDir, TmpDir, GraphRoot, RunRoot, GraphDriver, VolumeDir FROM DBConfig`).
		Scan(&version, &osName, &staticDir, &tmpDir, &graphRoot, &runRoot, &driver, &volumePath)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		warn("DBConfig has no row")
	case err != nil:
		return nil, sqliteError(dbPath, "DBConfig", err)
	default:
		if version != podmanSchemaVersion {
			warn("schema version %d, read as version %d", version, podmanSchemaVersion)
		}
		ps.RuntimeConfig = map[string]string{}
		for k, v := range map[string]sql.NullString{"os": osName, "static-dir": staticDir, "tmp-dir": tmpDir,
			"graph-root": graphRoot, "run-root": runRoot, "graph-driver-name": driver, "volume-path": volumePath} {
			if v.Valid {
				ps.RuntimeConfig[k] = v.String
			}
		}
	}

	// One query per table, each JSON column returned only when its size is
	// within bounds (octet_length reads the record header, not the value).
	doc := func(col string) string {
		return fmt.Sprintf("octet_length(%[1]s), CASE WHEN octet_length(%[1]s) <= %[2]d THEN CAST(%[1]s AS BLOB) END", col, maxPodmanSQLiteDoc)
	}
	type jsonCol struct {
		size sql.NullInt64
		data []byte
	}
	checkDoc := func(what string, c jsonCol) ([]byte, error) {
		switch {
		case !c.size.Valid:
			return nil, errors.New(what + " is NULL")
		case c.size.Int64 > maxPodmanSQLiteDoc:
			return nil, fmt.Errorf("%s: %d bytes exceeds the %d-byte limit", what, c.size.Int64, maxPodmanSQLiteDoc)
		}
		return c.data, nil
	}
	query := func(table, q string, row func(*sql.Rows) error) error {
		rows, err := db.QueryContext(ctx, q+fmt.Sprintf(" LIMIT %d", maxPodmanSQLiteRows+1))
		if err != nil {
			return sqliteError(dbPath, table, err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if n++; n > maxPodmanSQLiteRows {
				return fmt.Errorf("%s: %s: more than %d rows", dbPath, table, maxPodmanSQLiteRows)
			}
			if err := row(rows); err != nil {
				return sqliteError(dbPath, table, err)
			}
		}
		if err := rows.Err(); err != nil {
			return sqliteError(dbPath, table, err)
		}
		return nil
	}

	err = query("ContainerConfig", `SELECT c.ID, c.PodID, `+doc("c.JSON")+`, s.ID IS NOT NULL, `+doc("s.JSON")+
		` FROM ContainerConfig c LEFT JOIN ContainerState s ON s.ID = c.ID ORDER BY c.ID`, func(r *sql.Rows) error {
		var (
			id, podID   sql.NullString
			cfg, state  jsonCol
			hasState    bool
			stateDoc    []byte
			containerID string
		)
		if err := r.Scan(&id, &podID, &cfg.size, &cfg.data, &hasState, &state.size, &state.data); err != nil {
			return err
		}
		containerID = id.String
		if !ValidID(containerID) {
			warn("container %q is not an id, skipped", overlaystore.Truncate(containerID))
			return nil
		}
		cfgDoc, err := checkDoc("config", cfg)
		if err == nil && hasState {
			stateDoc, err = checkDoc("state", state)
		}
		if err != nil {
			warn("container %s: %v", containerID, err)
			return nil
		}
		var pod []byte
		if podID.Valid {
			pod = []byte(podID.String)
		}
		c, err := decodePodmanDocs(containerID, cfgDoc, stateDoc, pod)
		if err != nil {
			warn("container %s: %v", containerID, err)
			return nil
		}
		if !hasState {
			warn("container %s: no ContainerState row", containerID)
		}
		ps.Containers[containerID] = c
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Exit codes Podman kept after the state was reset (a restarted or
	// removed container): only where the state has none.
	err = query("ContainerExitCode", `SELECT ID, ExitCode FROM ContainerExitCode ORDER BY ID`, func(r *sql.Rows) error {
		var id sql.NullString
		var code sql.NullInt64
		if err := r.Scan(&id, &code); err != nil {
			return err
		}
		if c := ps.Containers[id.String]; c != nil && c.ExitCode == nil && code.Valid && code.Int64 >= -1 && code.Int64 <= 255 {
			v := int32(code.Int64)
			c.ExitCode = &v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = query("PodConfig", `SELECT p.ID, `+doc("p.JSON")+`, s.InfraContainerID FROM PodConfig p LEFT JOIN PodState s ON s.ID = p.ID ORDER BY p.ID`, func(r *sql.Rows) error {
		var (
			id, infra sql.NullString
			cfgCol    jsonCol
		)
		if err := r.Scan(&id, &cfgCol.size, &cfgCol.data, &infra); err != nil {
			return err
		}
		if !ValidID(id.String) {
			warn("pod %q is not an id, skipped", overlaystore.Truncate(id.String))
			return nil
		}
		var cfg struct {
			Name    string            `json:"name"`
			Labels  map[string]string `json:"labels"`
			Created time.Time         `json:"created"`
		}
		b, err := checkDoc("config", cfgCol)
		if err == nil {
			err = decodeDoc(b, &cfg)
		}
		if err != nil {
			warn("pod %s: config: %v", id.String, err)
			return nil
		}
		ps.Pods[id.String] = &PodmanPod{ID: id.String, Name: cfg.Name, Labels: cfg.Labels, Created: cfg.Created, InfraID: infra.String}
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = query("VolumeConfig", `SELECT Name, `+doc("JSON")+` FROM VolumeConfig ORDER BY Name`, func(r *sql.Rows) error {
		var (
			name   sql.NullString
			cfgCol jsonCol
		)
		if err := r.Scan(&name, &cfgCol.size, &cfgCol.data); err != nil {
			return err
		}
		var cfg struct {
			Driver     string `json:"volumeDriver"`
			MountPoint string `json:"mountPoint"`
		}
		b, err := checkDoc("config", cfgCol)
		if err == nil {
			err = decodeDoc(b, &cfg)
		}
		if err != nil {
			warn("volume %q: config: %v", overlaystore.Truncate(name.String), err)
			return nil
		}
		ps.Volumes[name.String] = &PodmanVolume{Name: name.String, Driver: cfg.Driver, MountPoint: cfg.MountPoint}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ps, nil
}
