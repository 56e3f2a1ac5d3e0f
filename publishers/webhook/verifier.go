package webhook

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock, in either direction, before [Verifier.Verify] rejects
// it. It matches the Standard Webhooks recommendation.
const DefaultTolerance = 5 * time.Minute

// Errors that [Verifier.Verify] wraps, so that a receiver can tell a
// malformed request from a forged or replayed one with errors.Is.
var (
	// ErrMissingHeader means webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeader = errors.New("webhook: missing signature header")

	// ErrBadTimestamp means webhook-timestamp is not a decimal number of
	// seconds or lies outside the tolerance window.
	ErrBadTimestamp = errors.New("webhook: timestamp not acceptable")

	// ErrNoMatchingSignature means none of the signatures matches the body
	// under the receiver's secret.
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// Verifier checks the signature of incoming webhook requests. It is safe
// for concurrent use once its fields are set.
type Verifier struct {
	// Tolerance is how far the request's timestamp may be from Now, in
	// either direction. Zero or negative means DefaultTolerance; the check
	// cannot be turned off.
	Tolerance time.Duration

	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time

	key []byte
}

// NewVerifier returns a Verifier for the secret that the sender signs with,
// in the same form the sender is configured with ("whsec_" and base64).
func NewVerifier(secret string) (*Verifier, error) {
	key, err := DecodeSecret(secret)
	if err != nil {
		return nil, err
	}

	return &Verifier{Tolerance: DefaultTolerance, Now: time.Now, key: key}, nil
}

// Verify reports whether header and body form a genuine, fresh request: the
// three signature headers are present, the timestamp lies within the
// tolerance, and at least one of the space-separated "v1," signatures
// matches the body. Signatures of other versions are ignored. The body must
// be the raw request bytes, read before any decoding. The returned error
// wraps [ErrMissingHeader], [ErrBadTimestamp] or [ErrNoMatchingSignature].
func (v *Verifier) Verify(header http.Header, body []byte) error {
	id := header.Get(HeaderID)
	rawTimestamp := header.Get(HeaderTimestamp)
	signatures := header.Get(HeaderSignature)
	if id == "" || rawTimestamp == "" || signatures == "" {
		return ErrMissingHeader
	}

	timestamp, err := strconv.ParseInt(rawTimestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrBadTimestamp, clipHeader(rawTimestamp))
	}
	if err := v.checkFreshness(timestamp); err != nil {
		return err
	}

	want := []byte(Sign(v.key, id, timestamp, body))
	for candidate := range strings.SplitSeq(signatures, " ") {
		if subtle.ConstantTimeCompare([]byte(candidate), want) == 1 {
			return nil
		}
	}

	return ErrNoMatchingSignature
}

// checkFreshness compares in whole seconds, without converting the header
// to a time.Time, so that no value can overflow.
func (v *Verifier) checkFreshness(timestamp int64) error {
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}

	current := now().Unix()
	window := int64(tolerance / time.Second)
	switch {
	case timestamp < current-window:
		return fmt.Errorf("%w: %d is more than %s old", ErrBadTimestamp, timestamp, tolerance)
	case timestamp > current+window:
		return fmt.Errorf("%w: %d is more than %s ahead", ErrBadTimestamp, timestamp, tolerance)
	}

	return nil
}

// clipHeader bounds a header value quoted in an error.
func clipHeader(s string) string {
	const limit = 32
	if len(s) <= limit {
		return s
	}

	return s[:limit] + "..."
}
