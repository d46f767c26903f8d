//go:build linux

package localnet

import "syscall"

// childSysProcAttr puts a child in its own process group and has the
// kernel send it SIGTERM should the launcher die without stopping it.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
