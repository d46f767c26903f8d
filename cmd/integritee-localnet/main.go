// Command integritee-localnet starts a local Integritee network described
// by a JSON file (local-setup/*.json): parentchain nodes, validateers beside
// them and optionally Prometheus; it prints their endpoints once all are
// healthy and stops them all on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/localnet"
)

func main() {
	// A closed stdout (say `| tee` ended by the same Ctrl-C) must not kill
	// the launcher before it has stopped its children: failed writes are
	// ignored instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// defaultBinDir is the directory of the launcher's own executable, where
// `make build` also puts integritee-node and integritee-service.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Dir(exe)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath string
		logLevel   string
		o          = localnet.Options{StartTimeout: localnet.DefaultStartTimeout, StopTimeout: localnet.DefaultStopTimeout}
	)
	cmd := &cobra.Command{
		Use:   "integritee-localnet --config local-setup/NAME.json",
		Short: "Start a local network of parentchain nodes and validateers",
		Long: `integritee-localnet starts the parentchain nodes and validateers a JSON config
describes (see local-setup/*.json and the README's "Local network"), each with its
own ports, data dir and log file under the work dir, waits until every process is
healthy, prints their endpoints and runs until Ctrl-C (SIGINT) or SIGTERM, when it
stops them all (SIGTERM, then SIGKILL after --stop-timeout) and exits 0. If a process
exits on its own, the launcher prints the tail of its log, stops the others and
exits 1.`,
		Example: `  integritee-localnet --config local-setup/one-validateer.json
  integritee-localnet --config local-setup/two-nodes-one-validateer.json --work-dir /tmp/net --bin-dir bin`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", logLevel)
			}
			if o.StartTimeout <= 0 || o.StopTimeout <= 0 {
				return fmt.Errorf("--start-timeout and --stop-timeout must be positive")
			}
			cfg, err := localnet.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if o.BinDir == "" {
				o.BinDir = defaultBinDir()
			}
			o.Out = cmd.OutOrStdout()
			o.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			return localnet.Run(cmd.Context(), cfg, o)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "network config (JSON), e.g. local-setup/one-validateer.json")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory for every process's data, logs/ and pids/; must be empty or absent and is kept (default: a fresh temporary directory, removed at exit)")
	f.BoolVar(&o.Keep, "keep", false, "keep the temporary work dir at exit")
	f.StringVar(&o.BinDir, "bin-dir", "", "directory of integritee-node and integritee-service (default: the launcher's own directory)")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long each start step may take to become healthy")
	f.DurationVar(&o.StopTimeout, "stop-timeout", o.StopTimeout, "how long a process may take to exit after SIGTERM before SIGKILL")
	f.StringVar(&logLevel, "log-level", "info", "the launcher's own log level: debug, info, warn or error")
	cmd.MarkFlagRequired("config")
	return cmd
}
