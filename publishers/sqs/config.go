package sqs

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Default values and bounds of [Config].
const (
	// DefaultMaxBytes is the default of [Config.MaxBytes]: 256 KiB, the
	// default MaximumMessageSize of a queue.
	DefaultMaxBytes = 256 << 10

	// LimitMaxBytes is the largest [Config.MaxBytes] accepted: 1 MiB, the
	// most SQS takes in one message.
	LimitMaxBytes = 1 << 20

	// DefaultRequestTimeout is the default of [Config.RequestTimeout].
	DefaultRequestTimeout = 10 * time.Second
)

// Config configures a [Publisher].
type Config struct {
	// QueueURL is the URL of the queue, such as
	// "https://sqs.eu-west-1.amazonaws.com/123456789012/events.fifo". A URL
	// ending in ".fifo" names a FIFO queue. Required.
	QueueURL string

	// AWS is the SDK configuration: region, credentials, retries and
	// endpoint. Build it with config.LoadDefaultConfig to follow the SDK's
	// default credential chain and endpoint variables. Region and
	// Credentials are required.
	AWS aws.Config

	// MaxBytes is the largest message sent, counting the body and each
	// attribute's name, type and value. Larger ones are refused with an error
	// wrapping [publishers.ErrPermanent]. At most [LimitMaxBytes]; keep it at
	// or below the queue's MaximumMessageSize. Defaults to
	// [DefaultMaxBytes].
	MaxBytes int

	// RequestTimeout bounds each HTTP request to SQS; the SDK's retries each
	// get a new one. It applies when AWS.HTTPClient is nil or the SDK's
	// BuildableClient, as config.LoadDefaultConfig makes it; another client
	// keeps its own timeouts. Defaults to [DefaultRequestTimeout].
	RequestTimeout time.Duration

	// Logger receives the publisher's logs. Watermill's per-message lines,
	// which hold the payload, go at its trace level (slog.LevelDebug-4).
	// Defaults to nil, which discards them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of the configuration in one error. Zero
// values that have a default are valid.
func (c Config) Validate() error {
	var problems []string

	if err := checkQueueURL(c.QueueURL); err != nil {
		problems = append(problems, err.Error())
	}
	if c.AWS.Region == "" {
		problems = append(problems, "no AWS region")
	}
	if c.AWS.Credentials == nil {
		problems = append(problems, "no AWS credentials provider")
	}
	if c.MaxBytes < 0 || c.MaxBytes > LimitMaxBytes {
		problems = append(problems,
			fmt.Sprintf("MaxBytes %d is not between 1 and %d", c.MaxBytes, LimitMaxBytes))
	}
	if c.RequestTimeout < 0 {
		problems = append(problems, fmt.Sprintf("RequestTimeout %s is negative", c.RequestTimeout))
	}

	if len(problems) > 0 {
		return fmt.Errorf("sqs: invalid config: %s", strings.Join(problems, "; "))
	}

	return nil
}

func checkQueueURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("no queue URL")
	}

	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("queue URL %q: %w", raw, err)
	}
	httpScheme := u.Scheme == "https" || u.Scheme == "http"
	if !httpScheme || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("queue URL %q is not an http(s) URL with a queue path", raw)
	}

	return nil
}

// isFIFO reports whether a queue URL names a FIFO queue.
func isFIFO(queueURL string) bool {
	return strings.HasSuffix(strings.TrimRight(queueURL, "/"), ".fifo")
}

// queueName returns the last path segment of a queue URL.
func queueName(queueURL string) string {
	trimmed := strings.TrimRight(queueURL, "/")

	return trimmed[strings.LastIndex(trimmed, "/")+1:]
}
