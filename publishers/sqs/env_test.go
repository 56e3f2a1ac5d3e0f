package sqs_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/sqs"
)

func envOf(vars map[string]string) publishers.Env {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

// isolateAWS points the SDK's default chain at nothing but the variables a
// test sets: static credentials, no shared files, no instance metadata.
func isolateAWS(t *testing.T) {
	t.Helper()

	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_SQS", "")
}

func TestConfigFromEnv_errorsNameTheVariable(t *testing.T) {
	isolateAWS(t)
	url := "https://sqs.us-east-1.amazonaws.com/123456789012/events"

	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no region", map[string]string{sqs.EnvQueueURL: url}, sqs.EnvRegion},
		{"no queue url", map[string]string{sqs.EnvRegion: "us-east-1"}, sqs.EnvQueueURL},
		{"queue name instead of url", map[string]string{sqs.EnvRegion: "us-east-1",
			sqs.EnvQueueURL: "events"}, sqs.EnvQueueURL},
		{"bad max bytes", map[string]string{sqs.EnvRegion: "us-east-1", sqs.EnvQueueURL: url,
			sqs.EnvMaxBytes: "256KiB"}, sqs.EnvMaxBytes},
		{"max bytes over 1 MiB", map[string]string{sqs.EnvRegion: "us-east-1", sqs.EnvQueueURL: url,
			sqs.EnvMaxBytes: "2000000"}, sqs.EnvMaxBytes},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sqs.ConfigFromEnv(t.Context(), envOf(c.vars))
			if err == nil {
				t.Fatal("ConfigFromEnv returned no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to name %s", err, c.want)
			}
		})
	}
}

func TestConfigFromEnv_readsEveryVariable(t *testing.T) {
	isolateAWS(t)

	cfg, err := sqs.ConfigFromEnv(t.Context(), envOf(map[string]string{
		sqs.EnvRegion:   "eu-west-1",
		sqs.EnvQueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/events.fifo",
		sqs.EnvMaxBytes: "1048576",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if cfg.AWS.Region != "eu-west-1" || cfg.MaxBytes != 1<<20 ||
		cfg.QueueURL != "https://sqs.eu-west-1.amazonaws.com/123456789012/events.fifo" {
		t.Fatalf("Config = region %q, max bytes %d, url %q",
			cfg.AWS.Region, cfg.MaxBytes, cfg.QueueURL)
	}
}

func TestNew_invalidConfig(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	good := aws.Config{Region: "us-east-1", Credentials: creds}
	url := "https://sqs.us-east-1.amazonaws.com/123456789012/events"

	cases := []struct {
		name string
		cfg  sqs.Config
		want string
	}{
		{"no queue url", sqs.Config{AWS: good}, "no queue URL"},
		{"relative url", sqs.Config{QueueURL: "/123/events", AWS: good}, "queue URL"},
		{"no region", sqs.Config{QueueURL: url, AWS: aws.Config{Credentials: creds}}, "region"},
		{"no credentials", sqs.Config{QueueURL: url, AWS: aws.Config{Region: "us-east-1"}},
			"credentials"},
		{"max bytes over 1 MiB", sqs.Config{QueueURL: url, AWS: good, MaxBytes: 2 << 20},
			"MaxBytes"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sqs.New(c.cfg)
			if err == nil {
				t.Fatal("New returned no error")
			}
			if !strings.Contains(err.Error(), "sqs: invalid config") ||
				!strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to say invalid config and %q", err, c.want)
			}
		})
	}
}

// TestFactory_endpointVariables checks that the SDK's endpoint variables
// reach the client the factory builds.
func TestFactory_endpointVariables(t *testing.T) {
	ep := endpoint(t)

	for _, variable := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"} {
		t.Run(variable, func(t *testing.T) {
			isolateAWS(t)
			t.Setenv(variable, ep)
			q := newQueue(t, ep, false, nil)

			dests, err := publishers.FromEnv(envOf(map[string]string{
				publishers.EnvDestination: "sqs",
				sqs.EnvRegion:             "us-east-1",
				sqs.EnvQueueURL:           q.url,
			}), nil)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if len(dests) != 1 || dests[0].Name != "sqs" {
				t.Fatalf("FromEnv returned %v, want the sqs destination", dests)
			}
			pub := dests[0].Publisher
			t.Cleanup(func() { _ = pub.Close() })

			msg := publishertest.NewEvent("user.created", "User:1", map[string]any{"id": 1})
			if err := pub.Publish("ignored", msg); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := q.waitFor(t, 1)
			if aws.ToString(got[0].Body) != string(msg.Payload) {
				t.Fatalf("body = %s, want %s", aws.ToString(got[0].Body), msg.Payload)
			}
		})
	}
}
