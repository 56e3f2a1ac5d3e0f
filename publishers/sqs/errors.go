package sqs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/apsoai/domainevents/internal/awserr"
	"github.com/apsoai/domainevents/publishers"
)

// errClosed is returned by Publish after Close.
var errClosed = errors.New("sqs: publisher is closed")

// permanentCodes are SQS error codes that refuse one message for what it
// is, so that sending it again cannot help.
var permanentCodes = map[string]bool{
	"InvalidMessageContents": true,
}

// tooLong reports whether the message of an InvalidParameterValue error
// refuses the message for its size: SQS says the message "must be shorter
// than" the queue's MaximumMessageSize. Other InvalidParameterValue errors
// may come from the configuration, so they stay retryable.
func tooLong(msg string) bool {
	return strings.Contains(msg, "shorter than") || strings.Contains(msg, "too long")
}

// unavailableCodes are SQS error codes that mean the queue cannot take
// messages right now, whatever the message.
var unavailableCodes = map[string]bool{
	"RequestThrottled":    true,
	"ThrottlingException": true,
	"KmsThrottled":        true,
	"QueueDoesNotExist":   true,
	"NonExistentQueue":    true,
	"ServiceUnavailable":  true,
	"InternalError":       true,
	"InternalFailure":     true,
}

// classify wraps err with the sentinel of the publishers package that
// describes it, when one does.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		// SQS answers with the codes of its older query protocol, such as
		// "AWS.SimpleQueueService.NonExistentQueue", next to the short ones.
		code := strings.TrimPrefix(apiErr.ErrorCode(), "AWS.SimpleQueueService.")

		tooLarge := code == "InvalidParameterValue" && tooLong(apiErr.ErrorMessage())

		switch {
		case permanentCodes[code], tooLarge:
			return fmt.Errorf("%w: %w", publishers.ErrPermanent, err)
		case unavailableCodes[code]:
			return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
		}
	}

	return awserr.Unavailable(err)
}
