// Command faxbox is the fax and callback appliance's supervisor.
//
//	faxbox serve [-config FILE] [-listen ADDR] [-data DIR] [-token TOKEN] [-smtp-listen ADDR]
//	faxbox render-config -config FILE [-out DIR] [-dahdi-out DIR]
//	faxbox firstboot -base FILE -out FILE
//	faxbox version
//	faxbox send|status|list|show|cancel|retry|inbox …   (the API client, package cli)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/cli"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/services"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "render-config":
		return renderConfig(args[1:], stdout, stderr)
	case "firstboot":
		return firstBoot(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "faxbox", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	if cli.IsCommand(args[0]) {
		return cli.Main(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "faxbox: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  faxbox serve [-config FILE] [-listen ADDR] [-data DIR] [-token TOKEN] [-smtp-listen ADDR]
  faxbox render-config -config FILE [-out DIR] [-dahdi-out DIR]
  faxbox firstboot -base FILE -out FILE
  faxbox version
the API client (faxbox COMMAND -h for its flags):`)
	cli.Usage(w)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (JSON); defaults apply without one")
	listen := fs.String("listen", "", "HTTP listen address (overrides the file's listen)")
	data := fs.String("data", "", "data directory (overrides the file's data_dir)")
	token := fs.String("token", "", "API bearer token (added to the file's tokens)")
	smtpListen := fs.String("smtp-listen", "", "SMTP listener address for e-mail to fax (overrides the file's smtp_listen.addr)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			fmt.Fprintln(stderr, "faxbox:", err)
			return 1
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *token != "" {
		cfg.Tokens = append(cfg.Tokens, *token)
	}
	if *smtpListen != "" {
		cfg.SMTPListen.Addr = *smtpListen
	}
	// FAXBOX_LOG=debug logs the details (AMI reconnect attempts, …).
	level := slog.LevelInfo
	if os.Getenv("FAXBOX_LOG") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := box.Open(ctx, cfg, box.Options{Log: log, Version: version})
	if err != nil {
		fmt.Fprintln(stderr, "faxbox:", err)
		return 1
	}
	defer b.Close()
	if err := b.Serve(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "faxbox:", err)
		return 1
	}
	log.Info("faxbox stopped")
	return 0
}

// renderConfig writes the Asterisk configuration (-out) and DAHDI's
// system.conf (-dahdi-out) for the config file, and prints the files written.
// A box without DAHDI spans gets no system.conf (and exit status 0).
func renderConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("render-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (JSON) with an asterisk section")
	out := fs.String("out", "", "directory to write the Asterisk configuration into")
	dahdiOut := fs.String("dahdi-out", "", "directory to write DAHDI's system.conf into")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *out == "" && *dahdiOut == "" {
		fmt.Fprintln(stderr, "faxbox render-config: -config and -out or -dahdi-out are required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "faxbox:", err)
		return 1
	}
	var written []string
	if *out != "" {
		names, err := services.RenderTo(cfg, *out)
		if err != nil {
			fmt.Fprintln(stderr, "faxbox:", err)
			return 1
		}
		for _, n := range names {
			written = append(written, filepath.Join(*out, n))
		}
	}
	if *dahdiOut != "" && cfg.DAHDI != nil {
		path, err := dahdi.WriteSystemConf(*cfg.DAHDI, *dahdiOut)
		if err != nil {
			fmt.Fprintln(stderr, "faxbox:", err)
			return 1
		}
		written = append(written, path)
	}
	for _, p := range written {
		fmt.Fprintln(stdout, p)
	}
	return 0
}

// firstBoot makes the box's own config from the image's default when it has
// none yet (config.FirstBoot) and prints the API token it generated.
func firstBoot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("firstboot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "/etc/faxbox/faxbox.json", "the image's default configuration")
	out := fs.String("out", "/var/lib/faxbox/faxbox.json", "the box's own configuration (data partition)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tok, created, err := config.FirstBoot(*base, *out)
	if err != nil {
		fmt.Fprintln(stderr, "faxbox:", err)
		return 1
	}
	if created {
		fmt.Fprintln(stdout, "faxbox: first boot: made", *out)
	}
	if tok != "" {
		fmt.Fprintln(stdout, "faxbox: first boot: API token", tok)
	}
	return 0
}
