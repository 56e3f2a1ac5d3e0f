// Package webhook delivers events as signed HTTP POST requests that follow
// the Standard Webhooks specification, using only the standard library.
//
// Each event becomes one request to the configured URL. Its body is the
// event body exactly as the relay produced it; the signature covers those
// same bytes, never a re-encoding. The request carries:
//
//	content-type:      application/json
//	webhook-id:        the event id (stable across retries)
//	webhook-timestamp: Unix seconds when this attempt was sent
//	webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">
//
// plus a traceparent header when the event carries trace context. The
// signing key is the base64 decoding of the secret after an optional
// "whsec_" prefix. Every attempt, retries included, gets a fresh timestamp
// and signature, so a receiver that rejects old timestamps still accepts a
// late retry.
//
// Any answer outside 2xx is a failure and the relay retries the event.
// Redirects are not followed. Refused connections, timeouts and the answers
// 408, 429 and 5xx wrap [publishers.ErrUnavailable]; an event larger than
// [Config.MaxBytes] is refused before sending with an error wrapping
// [publishers.ErrPermanent]. Delivery is at least once: a receiver must
// dedupe on webhook-id, since an answer lost on the way back makes the relay
// send the event again.
//
// Importing the package registers the "webhook" destination, built from
// EVENTS_WEBHOOK_URL and EVENTS_WEBHOOK_SECRET (see [publishers.FromEnv]).
//
// Receivers written in Go can check requests with [Verifier], which accepts
// any of several space-separated signatures (for secret rotation), compares
// in constant time and rejects timestamps outside a tolerance window.
package webhook
