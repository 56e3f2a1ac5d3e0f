package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/apsoai/domainevents/publishers/webhook"
)

// signedHeader returns the three signature headers of a request signed
// with testSecret at the given time.
func signedHeader(t testing.TB, id string, at time.Time, body []byte) http.Header {
	t.Helper()

	key, err := webhook.DecodeSecret(testSecret)
	if err != nil {
		t.Fatalf("DecodeSecret: %v", err)
	}

	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(key, id, at.Unix(), body))

	return h
}

func newVerifier(t testing.TB) *webhook.Verifier {
	t.Helper()

	v, err := webhook.NewVerifier(testSecret)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}

	return v
}

// TestVerifier_agreesWithOfficialLibrary feeds both verifiers the same
// requests and expects the same verdict, and the documented sentinel from
// ours.
func TestVerifier_agreesWithOfficialLibrary(t *testing.T) {
	official, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatalf("official NewWebhook: %v", err)
	}
	ours := newVerifier(t)

	body := []byte(`{"id":"evt_1","payload":{"name":"Zoë <b>&</b> 🚀"}}`)
	now := time.Now()

	cases := []struct {
		name    string
		header  http.Header
		body    []byte
		wantErr error
	}{
		{"valid", signedHeader(t, "evt_1", now, body), body, nil},
		{"tampered body", signedHeader(t, "evt_1", now, body),
			[]byte(`{"id":"evt_1","payload":{"name":"Zoe"}}`), webhook.ErrNoMatchingSignature},
		{"body with an extra space", signedHeader(t, "evt_1", now, body),
			append([]byte(" "), body...), webhook.ErrNoMatchingSignature},
		{"other id", withHeader(signedHeader(t, "evt_1", now, body), webhook.HeaderID, "evt_2"),
			body, webhook.ErrNoMatchingSignature},
		{"old timestamp", signedHeader(t, "evt_1", now.Add(-10*time.Minute), body), body,
			webhook.ErrBadTimestamp},
		{"future timestamp", signedHeader(t, "evt_1", now.Add(10*time.Minute), body), body,
			webhook.ErrBadTimestamp},
		{"timestamp not a number", withHeader(signedHeader(t, "evt_1", now, body),
			webhook.HeaderTimestamp, "yesterday"), body, webhook.ErrBadTimestamp},
		{"timestamp swapped after signing", withHeader(signedHeader(t, "evt_1", now, body),
			webhook.HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10)), body,
			webhook.ErrNoMatchingSignature},
		{"missing signature", withHeader(signedHeader(t, "evt_1", now, body),
			webhook.HeaderSignature, ""), body, webhook.ErrMissingHeader},
		{"missing id", withHeader(signedHeader(t, "evt_1", now, body), webhook.HeaderID, ""),
			body, webhook.ErrMissingHeader},
		{"rotated secret: several signatures, one valid", withHeader(
			signedHeader(t, "evt_1", now, body), webhook.HeaderSignature,
			"v1,bm90IHRoaXMgb25l v2,abc "+signedHeader(t, "evt_1", now, body).Get(
				webhook.HeaderSignature)), body, nil},
		{"valid signature under another version", withHeader(
			signedHeader(t, "evt_1", now, body), webhook.HeaderSignature,
			"v1a"+signedHeader(t, "evt_1", now, body).Get(webhook.HeaderSignature)[2:]),
			body, webhook.ErrNoMatchingSignature},
		{"signature of another secret", withHeader(signedHeader(t, "evt_1", now, body),
			webhook.HeaderSignature, "v1,"+"g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			body, webhook.ErrNoMatchingSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gotOurs := ours.Verify(c.header, c.body)
			gotOfficial := official.Verify(c.body, c.header)

			if (gotOurs == nil) != (gotOfficial == nil) {
				t.Fatalf("verdicts differ: ours %v, official %v", gotOurs, gotOfficial)
			}
			if c.wantErr == nil && gotOurs != nil {
				t.Fatalf("Verify = %v, want nil", gotOurs)
			}
			if c.wantErr != nil && !errors.Is(gotOurs, c.wantErr) {
				t.Fatalf("Verify = %v, want %v", gotOurs, c.wantErr)
			}
		})
	}
}

func TestVerifier_toleranceIsConfigurable(t *testing.T) {
	v := newVerifier(t)
	fixed := time.Unix(1_800_000_000, 0)
	v.Now = func() time.Time { return fixed }
	v.Tolerance = 30 * time.Second
	verifyAt := func(offset time.Duration) error {
		body := []byte(`{}`)
		return v.Verify(signedHeader(t, "evt_1", fixed.Add(offset), body), body)
	}

	if err := verifyAt(-30 * time.Second); err != nil {
		t.Errorf("30s old with a 30s tolerance: %v", err)
	}
	if err := verifyAt(-31 * time.Second); !errors.Is(err, webhook.ErrBadTimestamp) {
		t.Errorf("31s old with a 30s tolerance: %v, want ErrBadTimestamp", err)
	}
	if err := verifyAt(31 * time.Second); !errors.Is(err, webhook.ErrBadTimestamp) {
		t.Errorf("31s ahead with a 30s tolerance: %v, want ErrBadTimestamp", err)
	}

	v.Tolerance = 0
	if err := verifyAt(-4 * time.Minute); err != nil {
		t.Errorf("4 minutes old with the default tolerance: %v", err)
	}
	if err := verifyAt(-6 * time.Minute); !errors.Is(err, webhook.ErrBadTimestamp) {
		t.Errorf("6 minutes old with the default tolerance: %v, want ErrBadTimestamp", err)
	}
}

func TestNewVerifier_rejectsBadSecret(t *testing.T) {
	for _, secret := range []string{"", "whsec_", "whsec_***"} {
		if _, err := webhook.NewVerifier(secret); err == nil {
			t.Errorf("NewVerifier(%q) = nil error", secret)
		}
	}
}

func withHeader(h http.Header, key, value string) http.Header {
	h = h.Clone()
	if value == "" {
		h.Del(key)
	} else {
		h.Set(key, value)
	}

	return h
}

// FuzzVerifier_Verify checks that Verify never panics on any header values,
// and that a request signed for the current time always verifies.
func FuzzVerifier_Verify(f *testing.F) {
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("evt", "-9223372036854775808", "v1, v1,,, ,", []byte{})
	f.Add("evt", "9223372036854775807", "  ", []byte("\x00\xff"))
	f.Add("", "+12", "v2,abc v1", []byte(`<script>`))

	v := newVerifier(f)

	f.Fuzz(func(t *testing.T, id, timestamp, signature string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, timestamp)
		h.Set(webhook.HeaderSignature, signature)
		_ = v.Verify(h, body)

		if id == "" {
			return
		}
		if err := v.Verify(signedHeader(t, id, time.Now(), body), body); err != nil {
			t.Fatalf("a fresh valid signature was rejected: %v", err)
		}
	})
}
