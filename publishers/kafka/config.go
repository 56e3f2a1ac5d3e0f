package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// SASL mechanisms that [SASL.Mechanism] accepts.
const (
	// MechanismPlain sends the user name and password as they are. Use it
	// only over TLS.
	MechanismPlain = "PLAIN"

	// MechanismSCRAMSHA256 is SCRAM with SHA-256 (RFC 7677).
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"

	// MechanismSCRAMSHA512 is SCRAM with SHA-512.
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

var mechanisms = []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}

// Default values of [Config].
const (
	// DefaultMaxBytes is the default of [Config.MaxBytes]. It leaves room for
	// the record batch overhead under Kafka's default max.message.bytes of
	// 1048588.
	DefaultMaxBytes = 1_000_000

	// DefaultVersion is the default of [Config.Version].
	DefaultVersion = "2.1.0"

	// DefaultClientID is the default of [Config.ClientID].
	DefaultClientID = "apso-domain-events"

	// DefaultTimeout is the default of [Config.Timeout].
	DefaultTimeout = 10 * time.Second

	// DefaultRetries is the default of [Config.Retries].
	DefaultRetries = 5

	// DefaultRetryBackoff is the default of [Config.RetryBackoff].
	DefaultRetryBackoff = 250 * time.Millisecond
)

// minVersion is the oldest Kafka that supports the idempotent producer.
var minVersion = sarama.V0_11_0_0

// Config configures a [Publisher].
type Config struct {
	// Brokers lists seed brokers as host:port. Required.
	Brokers []string

	// Topic is the topic every event is written to. The topic passed to
	// Publish is ignored. Required.
	Topic string

	// MaxBytes is the largest record, in Sarama's estimate of its encoded
	// size (value, key, headers and per-record overhead), that is sent.
	// Larger ones are refused with an error wrapping
	// [publishers.ErrPermanent]. Sarama also caps a batch of records at this
	// size, so keep it at or below the topic's max.message.bytes. Defaults to
	// [DefaultMaxBytes].
	MaxBytes int

	// Version is the oldest Kafka version among the brokers, such as "2.1.0";
	// Sarama uses no request newer than it. It must be at least 0.11.0, the
	// first with the idempotent producer. Defaults to [DefaultVersion].
	Version string

	// ClientID is the client id the brokers see in their logs and quotas.
	// Defaults to [DefaultClientID].
	ClientID string

	// TLS, when not nil, makes every connection use TLS with this
	// configuration. Defaults to nil: plaintext connections.
	TLS *tls.Config

	// SASL authenticates the connections when its Mechanism is set. Defaults
	// to no authentication.
	SASL SASL

	// Timeout bounds how long a broker may wait for the in-sync replicas to
	// acknowledge a record, and each dial, read and write on a connection.
	// Defaults to [DefaultTimeout].
	Timeout time.Duration

	// Retries is how many times Sarama retries a record, a metadata request
	// or the request for a producer id, after a retriable error, before it
	// gives up. It must be at
	// least 1, as the idempotent producer needs it. Defaults to
	// [DefaultRetries].
	Retries int

	// RetryBackoff is the wait between those retries. Defaults to
	// [DefaultRetryBackoff].
	RetryBackoff time.Duration

	// Tune, when not nil, is called with the Sarama configuration after the
	// other fields were applied, to set what they do not cover (compression,
	// a partitioner, metadata refresh). The delivery settings (acks=all,
	// idempotence, one request in flight) are checked after it and New fails
	// if Tune turned them off. Defaults to nil.
	Tune func(*sarama.Config)

	// Logger receives the publisher's logs, with Watermill's per-message
	// lines at debug level or below. Defaults to nil, which discards them.
	Logger *slog.Logger
}

// SASL holds the credentials for SASL authentication.
type SASL struct {
	// Mechanism is [MechanismPlain], [MechanismSCRAMSHA256] or
	// [MechanismSCRAMSHA512]. Empty turns SASL off. Defaults to "".
	Mechanism string

	// Username is the SASL user name. Required with a Mechanism.
	Username string

	// Password is the SASL password. Required with a Mechanism. It is never
	// logged.
	Password string
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of the configuration in one error. Zero
// values that have a default are valid.
func (c Config) Validate() error {
	var problems []string

	if len(c.Brokers) == 0 {
		problems = append(problems, "no brokers")
	}
	if slices.ContainsFunc(c.Brokers, func(b string) bool { return strings.TrimSpace(b) == "" }) {
		problems = append(problems, "empty broker address")
	}
	if strings.TrimSpace(c.Topic) == "" {
		problems = append(problems, "no topic")
	}
	if c.MaxBytes < 0 {
		problems = append(problems, fmt.Sprintf("MaxBytes %d is negative", c.MaxBytes))
	}
	if c.Version != "" {
		if _, err := parseVersion(c.Version); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.Timeout < 0 {
		problems = append(problems, fmt.Sprintf("Timeout %s is negative", c.Timeout))
	}
	if c.Retries < 0 {
		problems = append(problems, fmt.Sprintf("Retries %d is negative", c.Retries))
	}
	if c.RetryBackoff < 0 {
		problems = append(problems, fmt.Sprintf("RetryBackoff %s is negative", c.RetryBackoff))
	}
	if p := c.SASL.problem(); p != "" {
		problems = append(problems, p)
	}

	if len(problems) > 0 {
		return fmt.Errorf("kafka: invalid config: %s", strings.Join(problems, "; "))
	}

	return nil
}

func (s SASL) problem() string {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			return "SASL credentials without a SASL mechanism"
		}
		return ""
	}

	if !slices.Contains(mechanisms, s.Mechanism) {
		return fmt.Sprintf("SASL mechanism %q is not one of %s",
			s.Mechanism, strings.Join(mechanisms, ", "))
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Sprintf("SASL mechanism %s needs a username and a password", s.Mechanism)
	}

	return ""
}

func parseVersion(s string) (sarama.KafkaVersion, error) {
	v, err := sarama.ParseKafkaVersion(s)
	if err != nil {
		return v, fmt.Errorf("version %q: %w", s, err)
	}
	if !v.IsAtLeast(minVersion) {
		return v, fmt.Errorf("version %q is older than %s, the first with idempotent producers",
			s, minVersion)
	}

	return v, nil
}

// saramaConfig builds the Sarama configuration of a validated Config with
// its defaults set.
func (c Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()

	version, err := parseVersion(c.Version)
	if err != nil {
		return nil, err
	}
	sc.Version = version
	sc.ClientID = c.ClientID

	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.MaxMessageBytes = c.MaxBytes
	sc.Producer.Timeout = c.Timeout
	sc.Producer.Retry.Max = c.Retries
	sc.Producer.Retry.Backoff = c.RetryBackoff

	sc.Producer.Transaction.Retry.Max = c.Retries
	sc.Producer.Transaction.Retry.Backoff = c.RetryBackoff
	sc.Metadata.Retry.Max = c.Retries
	sc.Metadata.Retry.Backoff = c.RetryBackoff
	sc.Metadata.Full = false

	sc.Net.DialTimeout = c.Timeout
	sc.Net.ReadTimeout = c.Timeout + 5*time.Second
	sc.Net.WriteTimeout = c.Timeout

	if c.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.TLS
	}
	if c.SASL.Mechanism != "" {
		c.SASL.apply(sc)
	}

	if c.Tune != nil {
		c.Tune(sc)
	}

	if err := checkDelivery(sc); err != nil {
		return nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}

	return sc, nil
}

func (s SASL) apply(sc *sarama.Config) {
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User = s.Username
	sc.Net.SASL.Password = s.Password

	switch s.Mechanism {
	case MechanismPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case MechanismSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return newSCRAMClient(sha256Hash)
		}
	case MechanismSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return newSCRAMClient(sha512Hash)
		}
	}
}

// checkDelivery makes sure Tune kept the settings the package's guarantees
// rest on.
func checkDelivery(sc *sarama.Config) error {
	switch {
	case sc.Producer.RequiredAcks != sarama.WaitForAll:
		return errors.New("Tune changed Producer.RequiredAcks; acks=all is required")
	case !sc.Producer.Idempotent:
		return errors.New("Tune turned Producer.Idempotent off; it is required")
	case sc.Net.MaxOpenRequests != 1:
		return errors.New("Tune changed Net.MaxOpenRequests; 1 is required")
	case !sc.Producer.Return.Successes:
		return errors.New("Tune turned Producer.Return.Successes off; it is required")
	}

	return nil
}
