package boltsafe

import (
	"fmt"
	"os"
)

// privateTempFile writes data to a new file in os.TempDir() (never next to
// the evidence) and reopens it read-only for bbolt. cleanup removes it; it
// must run after bbolt has closed the file (Windows cannot remove open
// files).
func privateTempFile(data []byte) (path string, f *os.File, cleanup func(), err error) {
	w, err := os.CreateTemp("", "ctrlift-bbolt-*.db")
	if err != nil {
		return "", nil, nil, fmt.Errorf("boltsafe: creating private copy: %w", err)
	}
	name := w.Name()
	cleanup = func() { os.Remove(name) }
	if _, err := w.Write(data); err != nil {
		w.Close()
		cleanup()
		return "", nil, nil, fmt.Errorf("boltsafe: writing private copy: %w", err)
	}
	if err := w.Close(); err != nil {
		cleanup()
		return "", nil, nil, fmt.Errorf("boltsafe: writing private copy: %w", err)
	}
	os.Chmod(name, 0o400)
	f, err = os.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		cleanup()
		return "", nil, nil, fmt.Errorf("boltsafe: reopening private copy: %w", err)
	}
	return name, f, cleanup, nil
}
