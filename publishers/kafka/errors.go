package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	// After a failed send the producer starts afresh (see Publisher.reset);
	// a sequence error on the way there is the cluster's state, not the
	// event's.
	sarama.ErrOutOfOrderSequenceNumber,
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

// refusedUs reports whether a connection failed because a broker refused
// this client (TLS or SASL) rather than because none could be reached: a
// configuration error to report at start-up.
func refusedUs(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError

	return errors.Is(err, sarama.ErrSASLAuthenticationFailed) ||
		errors.Is(err, sarama.ErrIllegalSASLState) ||
		errors.Is(err, sarama.ErrUnsupportedSASLMechanism) ||
		errors.As(err, &certErr) || errors.As(err, &unknownAuthority) ||
		errors.As(err, &hostname) || errors.As(err, &record)
}
