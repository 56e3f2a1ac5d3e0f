package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header names of the Standard Webhooks specification.
const (
	// HeaderID carries the event id, which stays the same on every retry.
	HeaderID = "webhook-id"

	// HeaderTimestamp carries the Unix time in seconds at which the attempt
	// was sent.
	HeaderTimestamp = "webhook-timestamp"

	// HeaderSignature carries one or more space-separated signatures, each
	// a version, a comma and the base64 signature ("v1,...").
	HeaderSignature = "webhook-signature"
)

// SecretPrefix is the optional prefix of a signing secret, which is removed
// before the rest is base64-decoded.
const SecretPrefix = "whsec_"

// signatureVersion tags HMAC-SHA256 signatures.
const signatureVersion = "v1"

// DecodeSecret returns the signing key of a secret: the standard base64
// decoding of the secret after removing an optional "whsec_" prefix. It
// returns an error for a secret that is empty or not valid base64. The
// error never contains the secret.
func DecodeSecret(secret string) ([]byte, error) {
	key, err := decodeKey(secret)
	if err != nil {
		return nil, fmt.Errorf("webhook: secret %w", err)
	}

	return key, nil
}

// decodeKey returns errors that complete the sentence "the secret ...".
func decodeKey(secret string) ([]byte, error) {
	encoded := strings.TrimPrefix(secret, SecretPrefix)
	if encoded == "" {
		return nil, errors.New("is empty")
	}

	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The decoder's error names an offset, never the secret's bytes.
		return nil, fmt.Errorf("is not standard base64 after the optional %q prefix (%w)",
			SecretPrefix, err)
	}

	return key, nil
}

// Sign returns the webhook-signature value for one attempt: "v1," followed
// by the base64 HMAC-SHA256, under key, of the id, the timestamp in decimal
// and the body, joined by dots. The body must be exactly the bytes sent.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	_, _ = mac.Write([]byte(id))
	_, _ = mac.Write([]byte{'.'})
	_, _ = mac.Write(strconv.AppendInt(nil, timestamp, 10))
	_, _ = mac.Write([]byte{'.'})
	_, _ = mac.Write(body)

	sum := mac.Sum(nil)
	out := make([]byte, len(signatureVersion)+1+base64.StdEncoding.EncodedLen(len(sum)))
	n := copy(out, signatureVersion+",")
	base64.StdEncoding.Encode(out[n:], sum)

	return string(out)
}
