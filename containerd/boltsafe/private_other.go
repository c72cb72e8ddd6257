//go:build !linux

package boltsafe

import "os"

func privateCopy(data []byte) (path string, f *os.File, cleanup func(), err error) {
	return privateTempFile(data)
}
