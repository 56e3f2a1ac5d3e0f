package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Name is the destination's name in EVENTS_DESTINATION.
const Name = "kafka"

// Environment variables that [ConfigFromEnv] reads.
const (
	// EnvBrokers holds the comma-separated seed brokers (required).
	EnvBrokers = "EVENTS_KAFKA_BROKERS"
	// EnvTopic holds the topic (required).
	EnvTopic = "EVENTS_KAFKA_TOPIC"
	// EnvTLS turns TLS on when "true".
	EnvTLS = "EVENTS_KAFKA_TLS"
	// EnvTLSCAFile names a PEM file of CA certificates; it turns TLS on.
	EnvTLSCAFile = "EVENTS_KAFKA_TLS_CA_FILE"
	// EnvSASLMechanism holds PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	EnvSASLMechanism = "EVENTS_KAFKA_SASL_MECHANISM"
	// EnvSASLUsername holds the SASL user name.
	EnvSASLUsername = "EVENTS_KAFKA_SASL_USERNAME"
	// EnvSASLPassword holds the SASL password.
	EnvSASLPassword = "EVENTS_KAFKA_SASL_PASSWORD"
	// EnvMaxBytes holds [Config.MaxBytes].
	EnvMaxBytes = "EVENTS_KAFKA_MAX_BYTES"
	// EnvVersion holds [Config.Version].
	EnvVersion = "EVENTS_KAFKA_VERSION"
)

func init() {
	publishers.Register(Name, factory)
}

func factory(env publishers.Env, logger *slog.Logger) (message.Publisher, error) {
	cfg, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger

	return New(cfg)
}

// ConfigFromEnv reads a [Config] from the environment variables listed in
// the package documentation. Every error names the variable at fault.
func ConfigFromEnv(env publishers.Env) (Config, error) {
	var cfg Config

	brokers, err := publishers.Require(env, Name, EnvBrokers)
	if err != nil {
		return cfg, fmt.Errorf("kafka: %w", err)
	}
	for _, b := range strings.Split(brokers, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			return cfg, fmt.Errorf("kafka: %s=%q has an empty entry", EnvBrokers, brokers)
		}
		cfg.Brokers = append(cfg.Brokers, b)
	}

	if cfg.Topic, err = publishers.Require(env, Name, EnvTopic); err != nil {
		return cfg, fmt.Errorf("kafka: %w", err)
	}

	if cfg.TLS, err = tlsFromEnv(env); err != nil {
		return cfg, err
	}
	if cfg.SASL, err = saslFromEnv(env); err != nil {
		return cfg, err
	}

	if n, ok, err := publishers.Bytes(env, EnvMaxBytes, 0); err != nil {
		return cfg, fmt.Errorf("kafka: %w", err)
	} else if ok {
		cfg.MaxBytes = n
	}
	if v, ok := publishers.Lookup(env, EnvVersion); ok {
		if _, err := parseVersion(v); err != nil {
			return cfg, fmt.Errorf("kafka: %s: %w", EnvVersion, err)
		}
		cfg.Version = v
	}

	return cfg, nil
}

func tlsFromEnv(env publishers.Env) (*tls.Config, error) {
	on := false
	if v, ok := publishers.Lookup(env, EnvTLS); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("kafka: %s=%q is not true or false", EnvTLS, v)
		}
		on = b
	}

	caFile, hasCA := publishers.Lookup(env, EnvTLSCAFile)
	if !on && !hasCA {
		return nil, nil
	}

	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if hasCA {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: %s: read CA file: %w", EnvTLSCAFile, err)
		}

		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: %s=%q holds no PEM certificate", EnvTLSCAFile, caFile)
		}
		cfg.RootCAs = pool
	}

	return cfg, nil
}

func saslFromEnv(env publishers.Env) (SASL, error) {
	mechanism, ok := publishers.Lookup(env, EnvSASLMechanism)
	if !ok {
		for _, key := range []string{EnvSASLUsername, EnvSASLPassword} {
			if _, set := publishers.Lookup(env, key); set {
				return SASL{}, fmt.Errorf("kafka: %s is set but %s is not; set it to one of %s",
					key, EnvSASLMechanism, strings.Join(mechanisms, ", "))
			}
		}
		return SASL{}, nil
	}

	mechanism = strings.ToUpper(mechanism)
	if !slices.Contains(mechanisms, mechanism) {
		return SASL{}, fmt.Errorf("kafka: %s=%q is not one of %s",
			EnvSASLMechanism, mechanism, strings.Join(mechanisms, ", "))
	}

	s := SASL{Mechanism: mechanism}
	fields := []struct {
		key string
		dst *string
	}{{EnvSASLUsername, &s.Username}, {EnvSASLPassword, &s.Password}}

	for _, f := range fields {
		// The password is taken as it is: spaces may belong to it.
		v, ok := env(f.key)
		if !ok || v == "" {
			return SASL{}, fmt.Errorf("kafka: %s is not set; %s=%s needs it",
				f.key, EnvSASLMechanism, mechanism)
		}
		*f.dst = v
	}

	return s, nil
}
