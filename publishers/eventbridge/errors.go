package eventbridge

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/apsoai/domainevents/internal/awserr"
	"github.com/apsoai/domainevents/publishers"
)

// errClosed is returned by Publish after Close.
var errClosed = errors.New("eventbridge: publisher is closed")

// permanentCodes are error codes that refuse an entry for what it is, so
// that sending it again cannot help.
var permanentCodes = map[string]bool{
	"MalformedDetail": true,
	"InvalidArgument": true,
}

// unavailableCodes are error codes that mean EventBridge cannot take
// entries right now, whatever the entry.
var unavailableCodes = map[string]bool{
	"InternalFailure":           true,
	"InternalException":         true,
	"ThrottlingException":       true,
	"ServiceUnavailable":        true,
	"LimitExceededException":    true,
	"ResourceNotFoundException": true,
}

// withCode wraps err with the sentinel of the publishers package that an
// error code stands for, when one does.
func withCode(code string, err error) error {
	switch {
	case permanentCodes[code]:
		return fmt.Errorf("%w: %w", publishers.ErrPermanent, err)
	case unavailableCodes[code]:
		return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
	}

	return err
}

// classify wraps the error of a whole PutEvents call with the sentinel of
// the publishers package that describes it, when one does.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if wrapped := withCode(apiErr.ErrorCode(), err); wrapped != err {
			return wrapped
		}
	}

	return awserr.Unavailable(err)
}

// entryError is the error of one entry that PutEvents refused.
func entryError(id string, res types.PutEventsResultEntry) error {
	code := aws.ToString(res.ErrorCode)
	err := fmt.Errorf("eventbridge: event %s refused: %s: %s",
		id, code, aws.ToString(res.ErrorMessage))

	return withCode(code, err)
}
