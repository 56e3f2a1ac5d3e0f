package sqs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/apsoai/domainevents/publishers"
)

// Name is the destination's name in EVENTS_DESTINATION.
const Name = "sqs"

// Environment variables that [ConfigFromEnv] reads.
const (
	// EnvRegion holds the queue's AWS region (required).
	EnvRegion = "AWS_REGION"
	// EnvQueueURL holds the queue URL (required).
	EnvQueueURL = "EVENTS_SQS_QUEUE_URL"
	// EnvMaxBytes holds [Config.MaxBytes].
	EnvMaxBytes = "EVENTS_SQS_MAX_BYTES"
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
// Only AWS_REGION and the EVENTS_SQS_* variables are read through env; the
// SDK reads its own variables (credentials, AWS_ENDPOINT_URL_SQS, profiles)
// from the process environment.
func ConfigFromEnv(ctx context.Context, env publishers.Env) (Config, error) {
	var cfg Config

	region, err := publishers.Require(env, Name, EnvRegion)
	if err != nil {
		return cfg, fmt.Errorf("sqs: %w", err)
	}

	if cfg.QueueURL, err = publishers.Require(env, Name, EnvQueueURL); err != nil {
		return cfg, fmt.Errorf("sqs: %w", err)
	}
	if err := checkQueueURL(cfg.QueueURL); err != nil {
		return cfg, fmt.Errorf("sqs: %s: %w", EnvQueueURL, err)
	}

	if n, ok, err := publishers.Bytes(env, EnvMaxBytes, LimitMaxBytes); err != nil {
		return cfg, fmt.Errorf("sqs: %w", err)
	} else if ok {
		cfg.MaxBytes = n
	}

	cfg.AWS, err = config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return cfg, fmt.Errorf("sqs: load AWS configuration: %w", err)
	}

	return cfg, nil
}
