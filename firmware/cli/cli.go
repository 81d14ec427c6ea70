// Package cli is faxbox's command line for office PCs and scripts, in the
// habit of HylaFAX's sendfax, faxstat and faxrm: `faxbox send`, `status`,
// `list`, `show`, `cancel`, `retry` and `inbox` talk to a box's HTTP API
// (package client). Human tables go to stdout by default, JSON with -json;
// progress and errors go to stderr. The exit status tells the outcome (the
// Exit* constants).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/faxbox/faxbox/firmware/client"
)

// Exit statuses. 0, 2 and 3 tell a waited-for fax's outcome; the others
// follow sysexits(3).
const (
	ExitOK          = 0  // done; with send -wait: delivered
	ExitFailed      = 2  // send -wait: the fax failed
	ExitCancelled   = 3  // send -wait: the fax was cancelled
	ExitUsage       = 64 // bad command line
	ExitRefused     = 65 // the box refused the request (4xx: a bad field, no such job, a conflict)
	ExitNoInput     = 66 // a file to send cannot be read
	ExitUnavailable = 69 // the box cannot be reached, failed (5xx), or lacks the endpoint
	ExitTempFail    = 75 // send -wait stopped waiting (-wait-timeout, Ctrl-C); the job goes on
	ExitAuth        = 77 // no token, or the box refused it (401/403)
	ExitConfig      = 78 // the CLI config file cannot be read
)

// DefaultURL is the box's address when neither -url, FAXBOX_URL nor the
// config file names one.
const DefaultURL = "http://127.0.0.1:8080"

// command is one subcommand.
type command struct {
	name, args, help string
	run              func(e *env, args []string) int
}

// commands lists the subcommands, in usage order.
var commands = []command{
	{"send", "-to NUMBER [options] FILE...", "send a fax (files in order); -wait follows it to the end", runSend},
	{"status", "", "the box: queue, lines, alarms", runStatus},
	{"list", "[-active|-done] [-status S] [-limit N]", "fax jobs, newest first", runList},
	{"show", "ID", "one fax job with its attempts", runShow},
	{"cancel", "ID...", "cancel fax jobs (hangs up a call in progress)", runCancel},
	{"retry", "ID...", "queue failed or cancelled fax jobs again", runRetry},
	{"inbox", "[-limit N]", "received faxes", runInbox},
	{"qualify", "[-trunk NAME] [-to NUMBER]", "fax a test page through a SIP trunk; prints the path's score and recommended T.38 settings", runQualify},
}

// IsCommand reports whether name is one of the CLI's subcommands.
func IsCommand(name string) bool {
	return slices.ContainsFunc(commands, func(c command) bool { return c.name == name })
}

// Usage writes the CLI's subcommands, one a line.
func Usage(w io.Writer) {
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("faxbox "+c.name+" "+c.args), c.help)
	}
	fmt.Fprintln(w, "  common flags: -url URL -config FILE -json -timeout D (FAXBOX_URL, FAXBOX_TOKEN)")
}

// Env is what a command runs with: its output, the environment and whether
// stderr is a terminal (progress is then redrawn on one line).
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	TTY            bool
}

// Main runs subcommand name with args in the process's environment, stopped
// by SIGINT/SIGTERM, and returns the exit status.
func Main(name string, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := false
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return Run(ctx, name, args, Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, TTY: tty})
}

// Run runs subcommand name with args and returns the exit status.
func Run(ctx context.Context, name string, args []string, e Env) int {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(e.Stderr, "faxbox: unknown command %q\n", name)
		return ExitUsage
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	cmd := commands[i]
	// Warnings for a person at a terminal: no time stamp.
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	en := &env{Env: e, ctx: ctx, cmd: cmd,
		log: slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: noTime})).With("component", "cli")}
	if code := cmd.run(en, args); code != exitHelp {
		return code
	}
	return ExitOK
}

// env is a running command: the Env, the common flags' values and the
// client they make.
type env struct {
	Env
	ctx     context.Context
	cmd     command
	log     *slog.Logger
	url     string
	config  string
	json    bool
	timeout time.Duration
	c       *client.Client
}

// flags returns the command's flag set with the common flags.
func (e *env) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("faxbox "+e.cmd.name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.Stderr, "usage: faxbox %s [flags] %s\n  %s\nflags:\n", e.cmd.name, e.cmd.args, e.cmd.help)
		fs.PrintDefaults()
		fmt.Fprint(e.Stderr, sourcesHelp)
	}
	fs.StringVar(&e.url, "url", "", "the box's API URL (default: $FAXBOX_URL, the config file's url, "+DefaultURL+")")
	fs.StringVar(&e.config, "config", "", "CLI config file with url and token (default: ~/.config/faxbox/cli.json)")
	fs.BoolVar(&e.json, "json", false, "machine-readable JSON on stdout")
	fs.DurationVar(&e.timeout, "timeout", 60*time.Second, "limit for each API request (an upload included)")
	return fs
}

// exitHelp is parse's status after -h: the command stops with ExitOK.
const exitHelp = -1

// sourcesHelp ends every command's -h: where the URL and the token come from.
const sourcesHelp = `The box's URL: -url, else $FAXBOX_URL, else "url" in the config file, else ` + DefaultURL + `.
The API token: $FAXBOX_TOKEN, else "token" in the config file (-config, default
$XDG_CONFIG_HOME/faxbox/cli.json or ~/.config/faxbox/cli.json, mode 0600):
  {"url": "http://192.0.2.10:8080", "token": "..."}
The token is never taken from the command line (other users could read it there).
Exit status: 0 done (send -wait: delivered), 2 the fax failed, 3 it was cancelled,
64 bad command line, 65 the box refused the request, 66 a file cannot be read,
69 the box cannot be reached or failed, 75 stopped waiting, 77 no or a refused
token, 78 the config file cannot be read.
`

// parse parses args with fs, flags and operands in any order ("--" ends the
// flags), makes the client and returns the operands. It returns an exit
// status other than ExitOK when the command should stop (exitHelp after -h).
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, int) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitHelp
			}
			return nil, ExitUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			operands = append(operands, rest...)
			break
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
	return operands, e.connect()
}

// cliConfig is the CLI's config file: {"url": "...", "token": "..."}.
type cliConfig struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// configPath is -config, else $XDG_CONFIG_HOME/faxbox/cli.json, else
// $HOME/.config/faxbox/cli.json ("" when neither is set).
func (e *env) configPath() (path string, explicit bool) {
	if e.config != "" {
		return e.config, true
	}
	if d := e.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "faxbox", "cli.json"), false
	}
	if h := e.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "faxbox", "cli.json"), false
	}
	return "", false
}

// loadConfig reads the config file; a missing default file is no error.
func (e *env) loadConfig() (cliConfig, error) {
	var cfg cliConfig
	path, explicit := e.configPath()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("cli: reading config %s: %w", path, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("cli: config %s (want {\"url\": \"...\", \"token\": \"...\"}): %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && cfg.Token != "" {
		e.log.Warn("the config file holding the API token is readable by others; chmod 600 it", "path", path)
	}
	return cfg, nil
}

// connect makes the client: URL from -url, FAXBOX_URL, the config file or
// DefaultURL; token from FAXBOX_TOKEN or the config file.
func (e *env) connect() int {
	cfg, err := e.loadConfig()
	if err != nil {
		fmt.Fprintf(e.Stderr, "faxbox %s: %v\n", e.cmd.name, err)
		return ExitConfig
	}
	url := firstOf(e.url, e.Getenv("FAXBOX_URL"), cfg.URL, DefaultURL)
	token := firstOf(e.Getenv("FAXBOX_TOKEN"), cfg.Token)
	if token == "" {
		fmt.Fprintf(e.Stderr, "faxbox %s: no API token: set FAXBOX_TOKEN or put {\"token\": \"...\"} in ~/.config/faxbox/cli.json (or -config FILE)\n", e.cmd.name)
		return ExitAuth
	}
	c, err := client.New(url, token, e.timeout)
	if err != nil {
		fmt.Fprintf(e.Stderr, "faxbox %s: %v\n", e.cmd.name, err)
		return ExitUsage
	}
	e.c = c
	return ExitOK
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageErr reports a bad command line.
func (e *env) usageErr(format string, args ...any) int {
	fmt.Fprintf(e.Stderr, "faxbox %s: %s\n", e.cmd.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(e.Stderr, "usage: faxbox %s [flags] %s (faxbox %s -h for the flags)\n", e.cmd.name, e.cmd.args, e.cmd.name)
	return ExitUsage
}

// fail reports err (what: what was being done) and returns its exit status:
// an API error with its code and message.
func (e *env) fail(what string, err error) int {
	var ae *client.APIError
	switch {
	case errors.Is(err, client.ErrNotSupported):
		fmt.Fprintf(e.Stderr, "faxbox %s: %s: this box does not offer it (%v)\n", e.cmd.name, what, err)
		return ExitUnavailable
	case errors.As(err, &ae):
		fmt.Fprintf(e.Stderr, "faxbox %s: %s: the box answered %s\n", e.cmd.name, what, ae)
		return exitFor(ae)
	default:
		fmt.Fprintf(e.Stderr, "faxbox %s: %s: %v\n", e.cmd.name, what, err)
		return ExitUnavailable
	}
}

// exitFor maps an API error to an exit status.
func exitFor(ae *client.APIError) int {
	switch {
	case ae.HTTPStatus == http.StatusUnauthorized || ae.HTTPStatus == http.StatusForbidden:
		return ExitAuth
	case ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 && ae.HTTPStatus != http.StatusRequestTimeout && ae.HTTPStatus != http.StatusTooManyRequests:
		return ExitRefused
	default:
		return ExitUnavailable
	}
}

// printJSON writes v as indented JSON to stdout.
func (e *env) printJSON(v any) {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
