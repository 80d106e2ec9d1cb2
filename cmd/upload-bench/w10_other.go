//go:build !unix

package main

import "syscall"

// raiseFileLimit leaves the open-file limit as it is, and reports none:
// W10 measures idle watchers where it can tell the limit.
func raiseFileLimit(uint64) uint64 { return 0 }

// reuseAddr does nothing here.
func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
