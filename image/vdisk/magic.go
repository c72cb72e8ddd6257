package vdisk

// Magic bytes by which Sniff recognises each format. Names and extensions
// are never consulted.
var (
	magicQCOW       = []byte("QFI\xfb")               // qcow, any version, at offset 0
	magicVMDKSparse = []byte("KDMV")                  // VMDK hosted sparse extent at offset 0
	magicVMDKCOWD   = []byte("COWD")                  // VMDK ESX sparse extent (refused by name by package vmdk)
	magicVMDKDesc   = []byte("# Disk DescriptorFile") // first line of a VMDK text descriptor
	magicVHDX       = []byte("vhdxfile")              // VHDX file type identifier at offset 0
	magicVHD        = []byte("conectix")              // VHD footer cookie: at the end, copied at 0 in dynamic disks
	utf8BOM         = []byte("\xef\xbb\xbf")          // tolerated before a VMDK descriptor
)

const (
	// SniffLen is how many leading bytes Sniff wants.
	SniffLen = 512

	vhdFooterLen      = 512 // the VHD footer is the last 512 bytes of the file
	vhdChecksumOffset = 64  // big-endian uint32: ones' complement of the byte sum, field itself excluded
)
