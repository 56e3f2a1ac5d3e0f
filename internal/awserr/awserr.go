// Package awserr sorts the errors of AWS SDK calls that the SQS and
// EventBridge destinations share: those that mean the service cannot take
// requests right now, whatever the request.
package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/apsoai/domainevents/publishers"
)

// Unavailable wraps err with publishers.ErrUnavailable when it is a
// transport failure: a 5xx or 429 answer, a network error, an exhausted
// client-side retry quota, or a timeout. It returns err unchanged otherwise.
func Unavailable(err error) error {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status := respErr.HTTPStatusCode()
		if status >= http.StatusInternalServerError || status == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
		}
	}

	var netErr net.Error
	var quotaErr ratelimit.QuotaExceededError
	if errors.As(err, &netErr) || errors.As(err, &quotaErr) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
	}

	return err
}
