package ewf

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// editFile rewrites a file through f.
func editFile(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstEntry returns the first chunk of the first table whose compressed
// bit is as asked.
func firstEntry(t *testing.T, b []byte, compressed bool) int {
	t.Helper()
	ents := tableEntriesOf(b, findSection(t, b, secTable))
	for i := 0; i < len(ents)/4; i++ {
		if (binary.LittleEndian.Uint32(ents[i*4:])&entryCompressed != 0) == compressed {
			return i
		}
	}
	t.Fatalf("no chunk with compressed=%v in the first table", compressed)
	return 0
}

func setDescriptorField(b []byte, s testSection, field int, v uint64) {
	binary.LittleEndian.PutUint64(b[s.off+int64(field):], v)
	fixDescriptor(b, s.off)
}

// TestCorruptImages damages real images and checks that the damage is an
// error naming where it is, never wrong or zeroed data.
func TestCorruptImages(t *testing.T) {
	needTool(t, "ewfacquire")
	raw := mixedRaw(3<<20+7*512, 1)
	rawPath := rawFile(t, "mixed.raw", raw)
	stored := []string{"-c", "none", "-S", "1MiB"}
	fast := []string{"-c", "deflate:fast", "-S", "1MiB", "-d", "sha1"}
	other := acquire(t, rawFile(t, "other.raw", mixedRaw(len(raw), 99)), stored...)

	type damage = func(t *testing.T, dir string) int64 // returns the chunk the read error must name, -1 if none
	e01 := func(dir string) string { return filepath.Join(dir, "img.E01") }
	for _, tc := range []struct {
		name    string
		args    []string
		damage  damage
		openErr string // substring; "" if Open must succeed
		readErr string // substring of the error reading all media; "" if it must read correctly
	}{
		{"stored chunk checksum", stored, func(t *testing.T, dir string) int64 {
			var c int
			editFile(t, e01(dir), func(b []byte) []byte {
				c = 3
				start, _, _ := chunkRange(t, b, c)
				b[start+100] ^= 0x40
				return b
			})
			return int64(c)
		}, "", "checksum"},
		{"compressed chunk corrupt", fast, func(t *testing.T, dir string) int64 {
			var c int
			editFile(t, e01(dir), func(b []byte) []byte {
				c = firstEntry(t, b, true)
				start, end, _ := chunkRange(t, b, c)
				b[(start+end)/2] ^= 0x55
				return b
			})
			return int64(c)
		}, "", "decompress"},
		{"compressed chunk truncated stream", fast, func(t *testing.T, dir string) int64 {
			var c int
			editFile(t, e01(dir), func(b []byte) []byte {
				c = firstEntry(t, b, true)
				start, end, _ := chunkRange(t, b, c)
				// A valid zlib stream that holds too little.
				var z bytes.Buffer
				w := zlib.NewWriter(&z)
				w.Write(make([]byte, 1000))
				w.Close()
				if int64(z.Len()) > end-start {
					t.Skip("compressed chunk too small for the test stream")
				}
				copy(b[start:], z.Bytes())
				return b
			})
			return int64(c)
		}, "", "stream ends after 1000 bytes"},
		{"decompression bomb", fast, func(t *testing.T, dir string) int64 {
			var c int
			editFile(t, e01(dir), func(b []byte) []byte {
				c = firstEntry(t, b, false) // a stored chunk: room for the bomb
				start, end, _ := chunkRange(t, b, c)
				var z bytes.Buffer
				w, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
				w.Write(make([]byte, 1<<20)) // 32 times the chunk
				w.Close()
				if int64(z.Len()) > end-start {
					t.Fatalf("bomb of %d bytes does not fit %d", z.Len(), end-start)
				}
				copy(b[start:], z.Bytes())
				e := binary.LittleEndian.Uint32(tableEntriesOf(b, findSection(t, b, secTable))[c*4:])
				setEntry(t, b, c, e|entryCompressed)
				return b
			})
			return int64(c)
		}, "", "stream holds more than 32768 bytes"},
		{"compressed flag cleared", fast, func(t *testing.T, dir string) int64 {
			var c int
			editFile(t, e01(dir), func(b []byte) []byte {
				c = firstEntry(t, b, true)
				e := binary.LittleEndian.Uint32(tableEntriesOf(b, findSection(t, b, secTable))[c*4:])
				setEntry(t, b, c, e&^entryCompressed)
				return b
			})
			return int64(c)
		}, "", "uncompressed chunk of"},
		{"table offset past the file", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				setEntry(t, b, 5, 0x7fff0000)
				return b
			})
			return 4 // chunk 4 ends where entry 5 says chunk 5 starts
		}, "", "outside the chunk data"},
		{"table entries bad, table2 sound", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				tableEntriesOf(b, findSection(t, b, secTable))[9] ^= 0xff
				return b
			})
			return -1
		}, "", ""},
		{"table and table2 entries bad", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				tableEntriesOf(b, findSection(t, b, secTable))[9] ^= 0xff
				tableEntriesOf(b, findSection(t, b, secTable2))[9] ^= 0xff
				return b
			})
			return -1
		}, "", "table section at byte"},
		{"table header bad, table2 sound", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				b[findSection(t, b, secTable).dataOffset+2] ^= 1
				return b
			})
			return -1
		}, "", ""},
		{"table entry count too large", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				for _, typ := range []string{secTable, secTable2} {
					h := b[findSection(t, b, typ).dataOffset:]
					binary.LittleEndian.PutUint32(h[thEntryCount:], 1<<30)
					binary.LittleEndian.PutUint32(h[thChecksum:], adler32.Checksum(h[:thChecksum]))
				}
				return b
			})
			return -1
		}, "entries do not fit", ""},
		{"section chain loop", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				setDescriptorField(b, findSection(t, b, secSectors), sdNext, fileHeaderSize)
				return b
			})
			return -1
		}, "section chain loop", ""},
		{"section points at itself", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				s := findSection(t, b, secVolume)
				setDescriptorField(b, s, sdNext, uint64(s.off))
				return b
			})
			return -1
		}, "points at itself", ""},
		{"next section past the file", stored, func(t *testing.T, dir string) int64 {
			editFile(t, filepath.Join(dir, "img.E02"), func(b []byte) []byte {
				setDescriptorField(b, findSection(t, b, secTable2), sdNext, uint64(len(b)+1000))
				return b
			})
			return -1
		}, "past the end of the file", ""},
		{"section size disagrees with next offset", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				s := findSection(t, b, secVolume)
				setDescriptorField(b, s, sdSize, uint64(s.size+76))
				return b
			})
			return -1
		}, "disagrees with the next section offset", ""},
		{"descriptor checksum", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				b[findSection(t, b, secSectors).off+1] ^= 1
				return b
			})
			return -1
		}, "section descriptor at byte", ""},
		{"missing segment", stored, func(t *testing.T, dir string) int64 {
			os.Remove(filepath.Join(dir, "img.E02"))
			return -1
		}, "segment 2 is missing", ""},
		{"truncated middle segment", stored, func(t *testing.T, dir string) int64 {
			editFile(t, filepath.Join(dir, "img.E02"), func(b []byte) []byte { return b[:len(b)/2] })
			return -1
		}, "truncated segment", ""},
		{"truncated last segment", stored, func(t *testing.T, dir string) int64 {
			editFile(t, filepath.Join(dir, "img.E03"), func(b []byte) []byte { return b[:len(b)-20] })
			return -1
		}, "truncated segment", ""},
		{"segment misnumbered", stored, func(t *testing.T, dir string) int64 {
			b, _ := os.ReadFile(filepath.Join(dir, "img.E03"))
			os.WriteFile(filepath.Join(dir, "img.E02"), b, 0o644)
			return -1
		}, "segment number 3 where 2 was expected", ""},
		{"segment from another image", stored, func(t *testing.T, dir string) int64 {
			// ewfacquire leaves the set identifier zero; give the foreign
			// segment one, as EnCase would have.
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(other), "img.E02"))
			v := b[findSection(t, b, secData).dataOffset:]
			copy(v[volSetIdentifier:], "0123456789abcdef")
			binary.LittleEndian.PutUint32(v[volChecksum:], adler32.Checksum(v[:volChecksum]))
			os.WriteFile(filepath.Join(dir, "img.E02"), b, 0o644)
			return -1
		}, "segment from another image", ""},
		{"set ends early", stored, func(t *testing.T, dir string) int64 {
			editFile(t, filepath.Join(dir, "img.E02"), func(b []byte) []byte {
				s := findSection(t, b, secNext)
				copy(b[s.off:s.off+sdTypeLen], append([]byte(secDone), make([]byte, sdTypeLen)...))
				fixDescriptor(b, s.off)
				return b
			})
			return -1
		}, "segments missing or truncated", ""},
		{"volume chunk count", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				v := b[findSection(t, b, secVolume).dataOffset:]
				binary.LittleEndian.PutUint32(v[volChunkCount:], 7)
				binary.LittleEndian.PutUint32(v[volChecksum:], adler32.Checksum(v[:volChecksum]))
				return b
			})
			return -1
		}, "chunk count 7", ""},
		{"chunk size too large", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				v := b[findSection(t, b, secVolume).dataOffset:]
				binary.LittleEndian.PutUint32(v[volSectorsPerChunk:], 1<<20)
				binary.LittleEndian.PutUint32(v[volChecksum:], adler32.Checksum(v[:volChecksum]))
				return b
			})
			return -1
		}, "sectors per chunk 1048576", ""},
		{"volume checksum", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				b[findSection(t, b, secVolume).dataOffset+volSectorsPerChunk] ^= 2
				return b
			})
			return -1
		}, "volume section at byte", ""},
		{"headers unreadable", stored, func(t *testing.T, dir string) int64 {
			editFile(t, e01(dir), func(b []byte) []byte {
				for _, s := range listSections(t, b) {
					if s.typ == secHeader || s.typ == secHeader2 {
						b[s.dataOffset+4] ^= 0xff // breaks the zlib stream
					}
				}
				return b
			})
			return -1
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := copySet(t, acquire(t, rawPath, tc.args...))
			chunk := tc.damage(t, filepath.Dir(first))
			img, err := Open(first, Options{})
			if tc.openErr != "" {
				if err == nil {
					img.Close()
					t.Fatalf("Open succeeded, want an error containing %q", tc.openErr)
				}
				if !strings.Contains(err.Error(), tc.openErr) {
					t.Fatalf("Open: %v, want an error containing %q", err, tc.openErr)
				}
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("Open: %v is not a FormatError", err)
				}
				if tc.name == "missing segment" && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("missing segment: %v does not wrap fs.ErrNotExist", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer img.Close()
			got, err := io.ReadAll(io.NewSectionReader(img, 0, img.Size()))
			if tc.readErr == "" {
				if err != nil || !bytes.Equal(got, raw) {
					t.Fatalf("read: %v (%d bytes), want the raw image", err, len(got))
				}
				if tc.name == "headers unreadable" && len(img.Info().Warnings) == 0 {
					t.Error("no warning about the unreadable headers")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.readErr) {
				t.Fatalf("read: %v, want an error containing %q", err, tc.readErr)
			}
			t.Log(err)
			if !bytes.Equal(got, raw[:len(got)]) {
				t.Fatal("bytes read before the error differ from the raw image")
			}
			if chunk < 0 {
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Chunk != chunk || fe.Media != chunk*img.chunkSize || fe.Segment != "img.E01" {
				t.Fatalf("error %v does not name chunk %d of img.E01 (FormatError %+v)", err, chunk, fe)
			}
			if want := "chunk " + strconv.FormatInt(chunk, 10) + " (media byte " + strconv.FormatInt(chunk*img.chunkSize, 10) + ")"; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			// The damage stays local: the chunk after the next one reads.
			p := make([]byte, 100)
			off := (chunk + 2) * img.chunkSize
			if n, err := img.ReadAt(p, off); err != nil || !bytes.Equal(p[:n], raw[off:off+int64(n)]) {
				t.Fatalf("chunk %d after the bad one: %v", chunk+2, err)
			}
			// Verify reports the bad chunk rather than a hash mismatch.
			if _, err := img.Verify(t.Context(), nil); err == nil || !strings.Contains(err.Error(), tc.readErr) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
