package localnet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one running child: its command, log file and exit.
type process struct {
	name string
	kind string // "node", "validateer" or "prometheus"
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the child exited and was reaped
	err  error         // the exit status; read only after done
}

// startProcess starts bin with args, stdout and stderr appended to logPath,
// in its own process group (so that a terminal's Ctrl-C reaches the
// launcher only, which then stops its children in order), and writes its
// pid to pidPath. exited receives the process once it exits.
func startProcess(name, kind, bin string, args []string, dir, logPath, pidPath string, exited chan<- *process) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "# %s %s\n", bin, shellJoin(args))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, kind: kind, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
		exited <- p
	}()
	if err := writeFileAtomic(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n")); err != nil {
		p.kill()
		<-p.done
		return nil, err
	}
	return p, nil
}

// writeFileAtomic writes via a temporary file and a rename, so that a
// reader never sees a partly written pid file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the child's process group (the child and anything
// it started).
func (p *process) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	if err := signalGroup(p.pid(), sig); err != nil {
		p.cmd.Process.Signal(sig)
	}
}

func (p *process) kill() { p.signal(syscall.SIGKILL) }

// stop sends SIGTERM, waits up to timeout, then sends SIGKILL and waits
// again. It reports whether the child had to be killed.
func (p *process) stop(timeout time.Duration) (killed bool) {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return false
	case <-time.After(timeout):
	}
	p.kill()
	<-p.done
	return true
}

// exitDescription says how the child ended.
func (p *process) exitDescription() string {
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return "exited with status 0"
	case errors.As(p.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	default:
		return p.err.Error()
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shellJoin quotes args for display.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// findBinary returns dir/name if it is an executable file.
func findBinary(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s not found in %s: build the binaries (make build puts them in bin/) and run the launcher from there, or give --bin-dir", name, dir)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", p)
	}
	return p, nil
}

// ReadPids reads the pid files a launcher writes in workDir
// (pids/<name>.pid): each running process's pid by name.
func ReadPids(workDir string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(workDir, "pids", "*.pid"))
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("localnet: pid file %s: %w", f, err)
		}
		m[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return m, nil
}
