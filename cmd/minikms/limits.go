package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minikms/minikms/kmip"
)

// Connection limits and timeouts of the KMIP listener, and the shutdown
// grace period, from the environment (0: the kmip package's default).
type limits struct {
	maxMessageSize    int
	handshakeTimeout  time.Duration
	idleTimeout       time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	requestTimeout    time.Duration
	maxConns          int
	maxConnsPerClient int
	shutdownGrace     time.Duration
}

// Environment variables of the limits.
const (
	envMaxMessageSize    = "MINIKMS_MAX_MESSAGE_SIZE"
	envHandshakeTimeout  = "MINIKMS_HANDSHAKE_TIMEOUT"
	envIdleTimeout       = "MINIKMS_IDLE_TIMEOUT"
	envReadTimeout       = "MINIKMS_READ_TIMEOUT"
	envWriteTimeout      = "MINIKMS_WRITE_TIMEOUT"
	envRequestTimeout    = "MINIKMS_REQUEST_TIMEOUT"
	envMaxConns          = "MINIKMS_MAX_CONNS"
	envMaxConnsPerClient = "MINIKMS_MAX_CONNS_PER_CLIENT"
	envShutdownGrace     = "MINIKMS_SHUTDOWN_GRACE"
)

// limitsEnv reads the limits the environment sets.
func (c *config) limitsEnv() error {
	l := &c.limits
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{envHandshakeTimeout, &l.handshakeTimeout}, {envIdleTimeout, &l.idleTimeout}, {envReadTimeout, &l.readTimeout},
		{envWriteTimeout, &l.writeTimeout}, {envRequestTimeout, &l.requestTimeout}, {envShutdownGrace, &l.shutdownGrace},
	}
	for _, d := range durations {
		v, ok := os.LookupEnv(d.name)
		if !ok {
			continue
		}
		t, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || t < 100*time.Millisecond || t > 24*time.Hour {
			return fmt.Errorf("%s: %q must be a duration from 100ms to 24h (for example 30s)", d.name, v)
		}
		*d.dst = t
	}
	counts := []struct {
		name     string
		dst      *int
		min, max int
	}{
		{envMaxMessageSize, &l.maxMessageSize, 1 << 10, 64 << 20},
		{envMaxConns, &l.maxConns, 1, 1_000_000},
		{envMaxConnsPerClient, &l.maxConnsPerClient, 1, 1_000_000},
	}
	for _, n := range counts {
		v, ok := os.LookupEnv(n.name)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || i < n.min || i > n.max {
			return fmt.Errorf("%s: %q must be a whole number from %d to %d", n.name, v, n.min, n.max)
		}
		*n.dst = i
	}
	if l.maxConns > 0 && l.maxConnsPerClient > l.maxConns {
		return fmt.Errorf("%s (%d) exceeds %s (%d)", envMaxConnsPerClient, l.maxConnsPerClient, envMaxConns, l.maxConns)
	}
	return nil
}

// apply sets the limits on a KMIP server configuration.
func (l limits) apply(k *kmip.Config) {
	k.MaxMessageSize, k.HandshakeTimeout, k.IdleTimeout = l.maxMessageSize, l.handshakeTimeout, l.idleTimeout
	k.ReadTimeout, k.WriteTimeout, k.RequestTimeout = l.readTimeout, l.writeTimeout, l.requestTimeout
	k.MaxConns, k.MaxConnsPerClient = l.maxConns, l.maxConnsPerClient
}

// grace is how long a shutdown waits for requests in progress.
func (l limits) grace() time.Duration {
	if l.shutdownGrace > 0 {
		return l.shutdownGrace
	}
	return shutdownGrace
}
