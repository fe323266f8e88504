package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/metrics"
)

// Logging settings.
const (
	envLogFormat = "MINIKMS_LOG_FORMAT" // json | text (default: text for dev and the commands, json for serve)
	envLogLevel  = "MINIKMS_LOG_LEVEL"  // debug | info | warn | error (default info)
)

// logSettings reads the logging settings: json is the format (def when
// unset), an error names a setting that is neither.
func logSettings(def bool) (json bool, level slog.Level, err error) {
	json = def
	switch f := strings.ToLower(strings.TrimSpace(os.Getenv(envLogFormat))); f {
	case "":
	case "json":
		json = true
	case "text":
		json = false
	default:
		return def, slog.LevelInfo, fmt.Errorf("%s: %q is not a log format (json or text)", envLogFormat, f)
	}
	switch l := strings.ToLower(strings.TrimSpace(os.Getenv(envLogLevel))); l {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return json, slog.LevelInfo, fmt.Errorf("%s: %q is not a log level (debug, info, warn or error)", envLogLevel, l)
	}
	return json, level, nil
}

// logOutput is where the server logs (tests replace it).
var logOutput io.Writer = os.Stderr

// newLogger returns the logger of a command: the format and level of the
// environment, or def (json) and info when they are not valid (the
// mistake is logged; serve refuses to start on it, see checkLogSettings).
func newLogger(def bool) *slog.Logger {
	json, level, err := logSettings(def)
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if json {
		log = slog.New(slog.NewJSONHandler(logOutput, opts))
	} else {
		log = slog.New(slog.NewTextHandler(logOutput, opts))
	}
	if err != nil {
		log.Error("logging settings ignored", "err", err)
	}
	return log
}

// checkLogSettings refuses invalid logging settings.
func checkLogSettings() error {
	_, _, err := logSettings(false)
	return err
}

// engineStoreHook, when set (tests), wraps the store the engine uses.
var engineStoreHook func(engine.Store) engine.Store

// engineStore is the store the engine uses: timed for the metrics.
func (n *node) engineStore() engine.Store {
	var s engine.Store = n.store
	if engineStoreHook != nil {
		s = engineStoreHook(s)
	}
	return n.metrics.Store(s)
}

// newMetrics returns the server's metrics registry.
func newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Options{Version: version})
}

// watchMetrics exports the engine's caches and the objects by type and
// state.
func (n *node) watchMetrics() {
	n.metrics.WatchEngine(n.eng)
	if c, ok := n.store.(engine.ObjectCounter); ok {
		n.metrics.WatchObjects(c)
	}
}
