package eventbridge_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/eventbridge"
	"github.com/apsoai/domainevents/publishers/publishertest"
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
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "")
}

func TestConfigFromEnv_errorsNameTheVariable(t *testing.T) {
	isolateAWS(t)

	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no region", map[string]string{eventbridge.EnvBus: "b"}, eventbridge.EnvRegion},
		{"no bus", map[string]string{eventbridge.EnvRegion: "us-east-1"}, eventbridge.EnvBus},
		{"bad max bytes", map[string]string{eventbridge.EnvRegion: "us-east-1",
			eventbridge.EnvBus: "b", eventbridge.EnvMaxBytes: "lots"}, eventbridge.EnvMaxBytes},
		{"bad linger", map[string]string{eventbridge.EnvRegion: "us-east-1",
			eventbridge.EnvBus: "b", eventbridge.EnvLinger: "2"}, eventbridge.EnvLinger},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := eventbridge.ConfigFromEnv(t.Context(), envOf(c.vars))
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

	cfg, err := eventbridge.ConfigFromEnv(t.Context(), envOf(map[string]string{
		eventbridge.EnvRegion:   "eu-central-1",
		eventbridge.EnvBus:      "orders",
		eventbridge.EnvMaxBytes: "131072",
		eventbridge.EnvLinger:   "3ms",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if cfg.AWS.Region != "eu-central-1" || cfg.EventBus != "orders" ||
		cfg.MaxBytes != 131072 || cfg.Linger != 3*time.Millisecond {
		t.Fatalf("Config = region %q, bus %q, max bytes %d, linger %s",
			cfg.AWS.Region, cfg.EventBus, cfg.MaxBytes, cfg.Linger)
	}
}

// TestFactory_endpointVariable checks that AWS_ENDPOINT_URL_EVENTBRIDGE
// reaches the client the factory builds.
func TestFactory_endpointVariable(t *testing.T) {
	isolateAWS(t)
	fake := newFakeBus(t)
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", fake.srv.URL)

	dests, err := publishers.FromEnv(envOf(map[string]string{
		publishers.EnvDestination: "eventbridge",
		eventbridge.EnvRegion:     "us-east-1",
		eventbridge.EnvBus:        testBus,
	}), nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if len(dests) != 1 || dests[0].Name != "eventbridge" {
		t.Fatalf("FromEnv returned %v, want the eventbridge destination", dests)
	}
	pub := dests[0].Publisher
	t.Cleanup(func() { _ = pub.Close() })

	msg := publishertest.NewEvent("user.created", "User:1", map[string]any{"id": 1})
	if err := pub.Publish("ignored", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	_, accepted := fake.snapshot(t)
	if len(accepted) != 1 || accepted[0].Detail != string(msg.Payload) ||
		accepted[0].EventBusName != testBus {
		t.Fatalf("fake accepted %+v, want the one event on %s", accepted, testBus)
	}
}
