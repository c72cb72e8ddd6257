package vhdx

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// guid is a GUID as stored: the first three fields little-endian, the last
// eight bytes in order.
type guid [16]byte

func (g guid) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}

func (g guid) isZero() bool { return g == guid{} }

// mustGUID parses the canonical text form of a GUID constant.
func mustGUID(s string) guid {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("bad GUID constant " + s)
	}
	var g guid
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g
}

func guidAt(b []byte) guid { return guid(b[:16]) }
