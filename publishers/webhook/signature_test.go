package webhook_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apsoai/domainevents/publishers/webhook"
)

func TestSign_specificationVector(t *testing.T) {
	key, err := webhook.DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("DecodeSecret: %v", err)
	}

	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`))

	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestSign_coversEveryPart(t *testing.T) {
	key := []byte("0123456789abcdef")
	base := webhook.Sign(key, "evt_1", 1700000000, []byte(`{"a":1}`))

	variants := map[string]string{
		"id":        webhook.Sign(key, "evt_2", 1700000000, []byte(`{"a":1}`)),
		"timestamp": webhook.Sign(key, "evt_1", 1700000001, []byte(`{"a":1}`)),
		"body":      webhook.Sign(key, "evt_1", 1700000000, []byte(`{"a": 1}`)),
		"key": webhook.Sign([]byte("0123456789abcdeF"), "evt_1", 1700000000,
			[]byte(`{"a":1}`)),
	}
	for part, sig := range variants {
		if sig == base {
			t.Errorf("changing the %s leaves the signature unchanged", part)
		}
	}
}

func TestDecodeSecret_prefixIsOptional(t *testing.T) {
	withPrefix, err := webhook.DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("with prefix: %v", err)
	}
	without, err := webhook.DecodeSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("without prefix: %v", err)
	}

	if !bytes.Equal(withPrefix, without) || len(without) != 24 {
		t.Fatalf("keys differ or have the wrong length: %x vs %x", withPrefix, without)
	}
}

func TestDecodeSecret_rejectsBadSecrets(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"prefix only":    "whsec_",
		"not base64":     "whsec_not*base64!",
		"url alphabet":   "whsec_ab-_",
		"space inside":   "whsec_YWJj ZA",
		"truncated data": "whsec_YWJjZA=",
	}
	for name, secret := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := webhook.DecodeSecret(secret)
			if err == nil {
				t.Fatalf("DecodeSecret(%q) = nil error", secret)
			}
			if !strings.HasPrefix(err.Error(), "webhook: secret ") {
				t.Errorf("error %q does not start with the package and subject", err)
			}
			if encoded := strings.TrimPrefix(secret, "whsec_"); encoded != "" &&
				strings.Contains(err.Error(), encoded) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}
