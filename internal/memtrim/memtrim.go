// Package memtrim gives back, once start-up is over, the pages of the
// executable that only start-up touched.
//
// Before main runs, Go executes the init code of every linked package
// (some 240 here: Kubernetes' API machinery, gRPC, protobuf, QUIC, ...),
// each in its own corner of the binary, and the kernel maps 64 KiB around
// every page fault (fault-around). An idle gateway thus maps ~17 MiB of
// text and read-only data, most of it never run again. Those pages are
// clean copies of the executable file: unmapping them from this process
// (MADV_DONTNEED on its read-only mappings of the executable) leaves them
// in the page cache, so the next use of one is a minor fault, not a read.
// RSS then counts the code the process actually runs.
//
// It sits beside the data flow: cmd/causeway calls Release once the first
// configuration is served.
package memtrim

// Result tells what Release did.
type Result struct {
	Mappings    int   // read-only mappings of the executable advised
	Bytes       int64 // their total size
	RSSBefore   int64 // resident bytes before, from /proc/self/statm
	RSSAfter    int64 // and after
	Unsupported bool  // not Linux: nothing done
}
