package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/IBM/sarama"

	"github.com/apsoai/domainevents/publishers"
)

// errClosed is returned by Publish after Close.
var errClosed = errors.New("kafka: publisher is closed")

// tooLarge lists the broker errors that refuse a record for its size.
var tooLarge = []error{
	sarama.ErrMessageSizeTooLarge,
	sarama.ErrMessageSetSizeTooLarge,
}

// unavailable lists the errors that mean the cluster cannot take records
// right now, whatever the record.
var unavailable = []error{
	sarama.ErrOutOfBrokers,
	sarama.ErrNotConnected,
	sarama.ErrBrokerNotAvailable,
	sarama.ErrLeaderNotAvailable,
	sarama.ErrNotLeaderForPartition,
	sarama.ErrRequestTimedOut,
	sarama.ErrNetworkException,
	sarama.ErrNotEnoughReplicas,
	sarama.ErrNotEnoughReplicasAfterAppend,
	sarama.ErrKafkaStorageError,
	sarama.ErrThrottlingQuotaExceeded,
	sarama.ErrUnknownTopicOrPartition,
	sarama.ErrControllerNotAvailable,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	context.DeadlineExceeded,
}

// classify wraps err with the sentinel of the publishers package that
// describes it, when one does.
func classify(err error) error {
	for _, target := range tooLarge {
		if errors.Is(err, target) {
			return fmt.Errorf("%w: %w", publishers.ErrPermanent, err)
		}
	}

	for _, target := range unavailable {
		if errors.Is(err, target) {
			return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
		}
	}

	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %w", publishers.ErrUnavailable, err)
	}

	return err
}
