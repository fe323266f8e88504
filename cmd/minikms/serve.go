package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func runServe(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	configFile := fl.String("config", "", "a YAML configuration file (settings as the environment's, lower case without MINIKMS_; the environment wins)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	if *configFile != "" {
		if err := applyConfigFile(*configFile); err != nil { // configfile.go
			return err
		}
	}
	if err := checkLogSettings(); err != nil { // metrics.go
		return err
	}
	cfg := config{kmipAddr: "0.0.0.0:5696", httpAddr: "127.0.0.1:8080"}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	host, _ := os.Hostname()
	cfg.hosts = []string{"localhost", "127.0.0.1", "::1"}
	if host != "" {
		cfg.hosts = append([]string{host}, cfg.hosts...)
	}
	log := newLogger(true)
	n, err := open(ctx, cfg, log)
	if err != nil {
		return err
	}
	cert, err := n.serverCertificate(ctx)
	if err != nil {
		n.close()
		return fmt.Errorf("server certificate: %w", err)
	}
	if cfg.tlsCert == "" {
		log.Warn("no server certificate configured: issued one from the root CA for this run", "hosts", cfg.hosts,
			"hint", "set "+envTLSCert+" and "+envTLSKey+" for a stable certificate")
	}
	if err := n.listen(ctx, cert); err != nil {
		n.close()
		return err
	}
	log.Info("miniKMS serving", "version", version, "kmip", n.kmipLn.Addr().String(), "http", n.httpLn.Addr().String(), "store", storeName(cfg.dbURL))
	return n.run(ctx)
}
