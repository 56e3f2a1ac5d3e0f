//go:build !linux

package integration_test

import (
	"errors"
	"os/exec"
)

// exDieWithParent does nothing where the kernel offers no parent-death
// signal; the tests' cleanup stops every shop they start.
func exDieWithParent(*exec.Cmd) {}

// exLocalPorts is only implemented on Linux.
func exLocalPorts(int) (map[int]bool, error) {
	return nil, errors.New("finding a process's sockets needs Linux's /proc")
}
