//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package audit

import "os"

// lockFile does nothing where flock is not available: keeping to one
// process per file journal is then up to the operator.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
