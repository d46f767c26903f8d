package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// waitWithProgress waits for wg and prints line() every second meanwhile.
func waitWithProgress(wg *sync.WaitGroup, out io.Writer, line func() string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	for {
		select {
		case <-done:
			return
		case <-progress.C:
			fmt.Fprintln(out, line())
		}
	}
}
