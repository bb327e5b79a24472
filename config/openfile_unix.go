//go:build unix

package config

import (
	"os"
	"syscall"
)

// openNoFollow opens a path that was checked to be a regular file without
// following a symlink swapped in since, and without blocking should a fifo
// have been.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
