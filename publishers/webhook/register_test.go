package webhook_test

import (
	"strings"
	"testing"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

// fakeEnv is an environment made of a map.
func fakeEnv(vars map[string]string) publishers.Env {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

func TestFromEnv_buildsWebhookDestination(t *testing.T) {
	rcv := newReceiver(t)
	env := fakeEnv(map[string]string{
		"EVENTS_DESTINATION":    "webhook",
		"EVENTS_WEBHOOK_URL":    rcv.URL,
		"EVENTS_WEBHOOK_SECRET": testSecret,
	})

	dests, err := publishers.FromEnv(env, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	t.Cleanup(func() {
		for _, d := range dests {
			_ = d.Publisher.Close()
		}
	})
	if len(dests) != 1 || dests[0].Name != "webhook" {
		t.Fatalf("FromEnv = %+v, want one destination named webhook", dests)
	}

	msg := publishertest.NewEvent("product.created", "Product:1", map[string]any{"id": 1})
	if err := dests[0].Publisher.Publish("", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := rcv.received()
	if len(got) != 1 || got[0].Verified != nil {
		t.Fatalf("receiver got %d requests (first verdict %v), want one verified request",
			len(got), firstVerdict(got))
	}
}

func firstVerdict(reqs []request) error {
	if len(reqs) == 0 {
		return nil
	}

	return reqs[0].Verified
}

func TestFromEnv_webhookErrorsNameTheVariable(t *testing.T) {
	const url = "http://127.0.0.1:1/hooks"
	cases := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"missing URL", map[string]string{"EVENTS_WEBHOOK_SECRET": testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "not set"}},
		{"blank URL", map[string]string{"EVENTS_WEBHOOK_URL": "  ",
			"EVENTS_WEBHOOK_SECRET": testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "not set"}},
		{"relative URL", map[string]string{"EVENTS_WEBHOOK_URL": "hooks.internal/events",
			"EVENTS_WEBHOOK_SECRET": testSecret},
			[]string{"EVENTS_WEBHOOK_URL", "hooks.internal/events", "absolute"}},
		{"missing secret", map[string]string{"EVENTS_WEBHOOK_URL": url},
			[]string{"EVENTS_WEBHOOK_SECRET", "not set"}},
		{"undecodable secret", map[string]string{"EVENTS_WEBHOOK_URL": url,
			"EVENTS_WEBHOOK_SECRET": "whsec_not-base64!"},
			[]string{"EVENTS_WEBHOOK_SECRET", "base64", "set it to"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.vars["EVENTS_DESTINATION"] = "webhook"

			dests, err := publishers.FromEnv(fakeEnv(c.vars), nil)

			if err == nil {
				for _, d := range dests {
					_ = d.Publisher.Close()
				}
				t.Fatal("FromEnv = nil error")
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "not-base64!") {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}
