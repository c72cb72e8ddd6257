package boltsafe

// HeadSize is how much of a file UsedSize wants to see: both meta pages at
// the largest page size.
const HeadSize = 2 * maxPageSize

// UsedSize returns how many bytes of a bbolt file of the given size are
// worth reading, from its first bytes (head, up to HeadSize): the pages
// below the high-water mark of its valid meta pages. bbolt never reads
// past it, so a file whose size was inflated (a sparse tail, a damaged
// size field) costs no memory. Without a valid meta page it returns what
// Validate needs to say so.
func UsedSize(head []byte, size int64) int64 {
	psize, err := bboltPageSize(head)
	if err != nil || psize < minPageSize || psize > maxPageSize || psize&(psize-1) != 0 {
		return min(size, int64(len(head)))
	}
	var hwm uint64
	for i := 0; i < 2; i++ {
		m, err := parseMeta(head, i*psize)
		if err == nil && m.check() == nil {
			hwm = max(hwm, m.pgid)
		}
	}
	if hwm < 2 {
		return min(size, int64(len(head)))
	}
	if hwm > uint64(size)/uint64(psize) {
		return size // truncated copy: Validate warns
	}
	return int64(hwm) * int64(psize)
}
