// Package errcode holds the project's named errors: each belongs to a
// module (its codespace), has a code unique within it and a name, so that
// clients tell errors apart without parsing text. It imports nothing of the
// project.
package errcode

import (
	"errors"
	"fmt"
)

// Error is a named, numbered error of one module. A failed transaction's
// result carries the module as codespace and the code, so clients can tell
// errors apart without parsing text.
type Error struct {
	Module string
	Code   uint32
	Name   string
	Desc   string
}

// New declares a module error. Codes start at 1 within each module.
func New(module string, code uint32, name, desc string) *Error {
	return &Error{Module: module, Code: code, Name: name, Desc: desc}
}

// Error returns "module.Name: description".
func (e *Error) Error() string { return e.Module + "." + e.Name + ": " + e.Desc }

// Wrap returns an error that is e with more detail.
func (e *Error) Wrap(format string, args ...any) error {
	return &wrapped{e: e, detail: fmt.Sprintf(format, args...)}
}

type wrapped struct {
	e      *Error
	detail string
}

func (w *wrapped) Error() string { return w.e.Error() + ": " + w.detail }
func (w *wrapped) Unwrap() error { return w.e }

// As finds the module error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
