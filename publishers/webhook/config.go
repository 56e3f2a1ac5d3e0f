package webhook

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Environment variables that the "webhook" destination reads.
const (
	// EnvURL names the variable holding the receiver's URL.
	EnvURL = "EVENTS_WEBHOOK_URL"

	// EnvSecret names the variable holding the signing secret.
	EnvSecret = "EVENTS_WEBHOOK_SECRET"
)

// DefaultTimeout bounds one delivery attempt when [Config.Timeout] is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxBytes is the largest body sent when [Config.MaxBytes] is zero:
// 1 MiB, the request body limit that common reverse proxies (nginx among
// them) apply out of the box, so that an event they would reject with 413 on
// every retry fails at once instead.
const DefaultMaxBytes = 1 << 20

// Config configures a [Publisher].
type Config struct {
	// URL is the absolute http or https address that every event is POSTed
	// to. Required.
	URL string

	// Secret is the signing secret shared with the receiver: base64 with an
	// optional "whsec_" prefix, as Standard Webhooks providers issue it.
	// Required.
	Secret string

	// Timeout bounds one attempt, from dialing to reading the answer's
	// headers and its first bytes. It applies on top of any deadline of the
	// message's context. Defaults to DefaultTimeout (10s).
	Timeout time.Duration

	// Client sends the requests. Set one to add a proxy, client
	// certificates or instrumentation; it should not follow redirects.
	// Defaults to a client with its own pooled transport (keep-alive,
	// up to 256 idle connections to the receiver, dial and TLS handshake
	// timeouts, a response header timeout of Timeout, TLS 1.2 or later)
	// that does not follow redirects.
	Client *http.Client

	// MaxBytes is the largest body sent. A larger event is refused with an
	// error wrapping publishers.ErrPermanent. Defaults to DefaultMaxBytes
	// (1 MiB).
	MaxBytes int

	// Logger receives a debug line per delivery. Defaults to discarding.
	Logger *slog.Logger

	// Now returns the current time, from which each attempt's
	// webhook-timestamp is taken. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Client == nil {
		c.Client = newClient(c.Timeout)
	}
}

// Validate reports the first problem with the configuration as an error
// that starts "webhook: invalid config". Zero values that have a default are
// accepted. The error names the environment variable that usually sets the
// field and how to fix it, and never contains the secret.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("webhook: invalid config: %w", err)
	}

	return nil
}

func (c Config) validate() error {
	if _, err := parseURL(c.URL); err != nil {
		return err
	}

	if _, err := decodeKey(c.Secret); err != nil {
		return fmt.Errorf("%s %w; set it to the signing secret shared with the receiver, "+
			"\"whsec_\" followed by base64 (for example \"whsec_\" + `openssl rand -base64 32`)",
			EnvSecret, err)
	}

	if c.Timeout < 0 {
		return fmt.Errorf("Timeout is %s; it must be positive, or zero for %s",
			c.Timeout, DefaultTimeout)
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("MaxBytes is %d; it must be positive, or zero for %d",
			c.MaxBytes, DefaultMaxBytes)
	}

	return nil
}

// parseURL accepts only absolute http and https URLs with a host. Its error
// names the variable and the value, with any password masked.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is empty; set it to the receiver's absolute http or https "+
			"URL, such as https://hooks.example.com/events", EnvURL)
	}

	u, err := url.Parse(raw)
	shown := raw
	if err == nil && u.User != nil {
		shown = u.Redacted()
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q is not an absolute http or https URL; set it to the "+
			"receiver's address, such as https://hooks.example.com/events", EnvURL, shown)
	}

	return u, nil
}

func newClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
	}

	// A POST turned into a GET by a 301 or 302 would lose the event, so a
	// redirect is returned, and reported, as the non-2xx answer it is.
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
