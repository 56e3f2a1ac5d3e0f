package eventbridge

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Default values and bounds of [Config].
const (
	// DefaultSource is the default of [Config.Source], the source every
	// Apso service uses.
	DefaultSource = "apso.domain-events"

	// DefaultMaxBytes is the default of [Config.MaxBytes]: 256 KiB.
	DefaultMaxBytes = 256 << 10

	// MaxBatchSize is the most entries PutEvents takes in one request, and
	// the default of [Config.BatchSize].
	MaxBatchSize = 10

	// DefaultLinger is the default of [Config.Linger].
	DefaultLinger = time.Millisecond

	// DefaultMaxInFlight is the default of [Config.MaxInFlight].
	DefaultMaxInFlight = 8

	// DefaultRequestTimeout is the default of [Config.RequestTimeout].
	DefaultRequestTimeout = 10 * time.Second

	// maxDetailTypeLength is the longest DetailType PutEvents accepts.
	maxDetailTypeLength = 128
)

// Config configures a [Publisher].
type Config struct {
	// EventBus is the name or ARN of the event bus. Required.
	EventBus string

	// Source is the Source of every entry. Defaults to [DefaultSource].
	Source string

	// AWS is the SDK configuration: region, credentials, retries and
	// endpoint. Build it with config.LoadDefaultConfig to follow the SDK's
	// default credential chain and endpoint variables. Region and
	// Credentials are required.
	AWS aws.Config

	// MaxBytes is the largest entry sent, counting the UTF-8 bytes of its
	// Source, DetailType and Detail as AWS does, and the most the entries of
	// one request may add up to. Larger entries are refused with an error
	// wrapping [publishers.ErrPermanent]. Defaults to [DefaultMaxBytes].
	MaxBytes int

	// BatchSize is the most entries sent in one PutEvents request, from 1 to
	// [MaxBatchSize]. Defaults to [MaxBatchSize].
	BatchSize int

	// Linger is how long the batcher waits for more entries after the first
	// one of a request before it sends the request. A negative value sends
	// what is already waiting without a pause, as net.Dialer's KeepAlive
	// turns keep-alives off. Defaults to [DefaultLinger].
	Linger time.Duration

	// MaxInFlight is the most PutEvents requests running at once. Defaults to
	// [DefaultMaxInFlight].
	MaxInFlight int

	// RequestTimeout bounds one PutEvents call, the SDK's retries included.
	// Defaults to [DefaultRequestTimeout].
	RequestTimeout time.Duration

	// Logger receives the publisher's logs: start and stop at info level,
	// one line per request at debug level. Defaults to nil, which discards
	// them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = MaxBatchSize
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
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

	if strings.TrimSpace(c.EventBus) == "" {
		problems = append(problems, "no event bus")
	}
	if c.AWS.Region == "" {
		problems = append(problems, "no AWS region")
	}
	if c.AWS.Credentials == nil {
		problems = append(problems, "no AWS credentials provider")
	}
	if c.MaxBytes < 0 {
		problems = append(problems, fmt.Sprintf("MaxBytes %d is negative", c.MaxBytes))
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		problems = append(problems,
			fmt.Sprintf("BatchSize %d is not between 1 and %d", c.BatchSize, MaxBatchSize))
	}
	if c.MaxInFlight < 0 {
		problems = append(problems, fmt.Sprintf("MaxInFlight %d is negative", c.MaxInFlight))
	}
	if c.RequestTimeout < 0 {
		problems = append(problems, fmt.Sprintf("RequestTimeout %s is negative", c.RequestTimeout))
	}

	if len(problems) > 0 {
		return fmt.Errorf("eventbridge: invalid config: %s", strings.Join(problems, "; "))
	}

	return nil
}
