//go:build !linux

package safeout

import (
	"io/fs"
	"os"
)

func sameDevice(a, b fs.FileInfo) bool { return false }

func renameNoReplace(tmp, final string) error {
	if _, err := os.Lstat(final); err == nil {
		return fs.ErrExist
	}
	return os.Rename(tmp, final)
}
