package eventbridge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/apsoai/domainevents/publishers"
)

// Name is the destination's name in EVENTS_DESTINATION.
const Name = "eventbridge"

// Environment variables that [ConfigFromEnv] reads.
const (
	// EnvRegion holds the bus's AWS region (required).
	EnvRegion = "AWS_REGION"
	// EnvBus holds the event bus name or ARN (required).
	EnvBus = "EVENTS_EVENTBRIDGE_BUS"
	// EnvMaxBytes holds [Config.MaxBytes].
	EnvMaxBytes = "EVENTS_EVENTBRIDGE_MAX_BYTES"
	// EnvLinger holds [Config.Linger] as a Go duration; "0" means no pause.
	EnvLinger = "EVENTS_EVENTBRIDGE_LINGER"
)

func init() {
	publishers.Register(Name, factory)
}

func factory(env publishers.Env, logger *slog.Logger) (message.Publisher, error) {
	cfg, err := ConfigFromEnv(context.Background(), env)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger

	return New(cfg)
}

// ConfigFromEnv reads a [Config] from the environment variables listed in
// the package documentation, and loads the AWS SDK's default configuration
// for the region. Every error names the variable at fault.
//
// Only AWS_REGION and the EVENTS_EVENTBRIDGE_* variables are read through
// env; the SDK reads its own variables (credentials,
// AWS_ENDPOINT_URL_EVENTBRIDGE, profiles) from the process environment.
func ConfigFromEnv(ctx context.Context, env publishers.Env) (Config, error) {
	var cfg Config

	region, err := publishers.Require(env, Name, EnvRegion)
	if err != nil {
		return cfg, fmt.Errorf("eventbridge: %w", err)
	}
	if cfg.EventBus, err = publishers.Require(env, Name, EnvBus); err != nil {
		return cfg, fmt.Errorf("eventbridge: %w", err)
	}

	if n, ok, err := publishers.Bytes(env, EnvMaxBytes, 0); err != nil {
		return cfg, fmt.Errorf("eventbridge: %w", err)
	} else if ok {
		cfg.MaxBytes = n
	}
	if v, ok := publishers.Lookup(env, EnvLinger); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("eventbridge: %s=%q is not a duration such as 2ms", EnvLinger, v)
		}
		if d == 0 {
			d = -1 // an explicit zero means no pause, not the default
		}
		cfg.Linger = d
	}

	cfg.AWS, err = config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return cfg, fmt.Errorf("eventbridge: load AWS configuration: %w", err)
	}

	return cfg, nil
}
