//go:build unix && !linux

package localnet

import "syscall"

// childSysProcAttr puts a child in its own process group.
func childSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
