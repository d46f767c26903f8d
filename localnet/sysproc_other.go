//go:build !unix

package localnet

import (
	"errors"
	"syscall"
)

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errors.New("no process groups") }
