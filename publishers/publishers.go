package publishers

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys that the relay sets on every message it hands a destination.
const (
	// MetadataType is the event type, such as "product.created".
	MetadataType = "event_type"

	// MetadataEntityKey is the key of the entity the event is about, such as
	// "Product:42". Events with the same key must keep their order; Kafka uses
	// it as the record key and SQS FIFO queues as the message group. It is
	// absent for events that are not about one entity.
	MetadataEntityKey = "entity_key"

	// MetadataTraceParent is the W3C trace context of the request that
	// caused the event, when there was one.
	MetadataTraceParent = "traceparent"
)

// EnvDestination is the environment variable that names the destinations.
const EnvDestination = "EVENTS_DESTINATION"

// ErrPermanent marks a delivery failure that no retry can cure, such as an
// event larger than the destination accepts. The relay fails such an event at
// once instead of spending its remaining attempts. Wrap it with
// fmt.Errorf("...: %w", ErrPermanent) and test for it with errors.Is.
var ErrPermanent = errors.New("permanent delivery failure")

// ErrUnavailable marks a failure of the destination itself rather than of
// one event: a refused connection, a timeout, a throttling answer. The relay
// may stop spending attempts on the backlog while a destination keeps
// answering with it.
var ErrUnavailable = errors.New("destination unavailable")

// Env looks up one environment variable, as [os.LookupEnv] does.
type Env func(key string) (string, bool)

// Factory builds one destination from the environment. It reads the
// variables the destination needs and returns an error that names the
// variable for a missing or malformed one. The logger is never nil.
type Factory func(env Env, logger *slog.Logger) (message.Publisher, error)

// Destination is a named publisher that the relay delivers to.
type Destination struct {
	// Name is the destination's name, as written in EVENTS_DESTINATION.
	Name string

	// Publisher sends events to the destination.
	Publisher message.Publisher
}

// known lists every destination this module ships, with the package that
// registers it, so that naming one that is not linked says what to import.
var known = map[string]string{
	"webhook":     "github.com/apsoai/domainevents/publishers/webhook",
	"kafka":       "github.com/apsoai/domainevents/publishers/kafka",
	"sqs":         "github.com/apsoai/domainevents/publishers/sqs",
	"eventbridge": "github.com/apsoai/domainevents/publishers/eventbridge",
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a destination available under name. It is meant to be
// called from the init function of the destination's package and panics if
// the name is empty, the factory is nil or the name is already registered,
// as these are programming errors.
func Register(name string, factory Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()

	if name == "" || factory == nil {
		panic("publishers: Register needs a name and a factory")
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("publishers: destination %q registered twice", name))
	}
	registry[name] = factory
}

// Registered returns the names of the destinations that are linked into this
// program, sorted.
func Registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()

	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)

	return names
}

// Names parses the value of EVENTS_DESTINATION: one name or a
// comma-separated list. Spaces around names are ignored and a repeated name
// counts once. It returns an error for an empty entry or a name this module
// does not know.
func Names(value string) ([]string, error) {
	var names []string

	for _, raw := range strings.Split(value, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			return nil, fmt.Errorf(
				"publishers: %s=%q has an empty entry; valid values: %s",
				EnvDestination, value, validValues())
		}
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf(
				"publishers: %s=%q names unknown destination %q; valid values: %s",
				EnvDestination, value, name, validValues())
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}

	return names, nil
}

// FromEnv builds the destinations that EVENTS_DESTINATION names. It returns
// no destinations and no error when the variable is unset or empty; the
// caller decides what that means (the relay does not start). Every error
// names the variable at fault and how to fix it.
func FromEnv(env Env, logger *slog.Logger) ([]Destination, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	value, _ := env(EnvDestination)
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}

	names, err := Names(value)
	if err != nil {
		return nil, err
	}

	dests := make([]Destination, 0, len(names))
	for _, name := range names {
		registryMu.RLock()
		factory := registry[name]
		registryMu.RUnlock()

		if factory == nil {
			closeAll(dests)
			return nil, fmt.Errorf(
				"publishers: %s names %q, but that destination is not linked into this program; "+
					"add `import _ %q`", EnvDestination, name, known[name])
		}

		pub, err := factory(env, logger.With("destination", name))
		if err != nil {
			closeAll(dests)
			return nil, fmt.Errorf("publishers: destination %q: %w", name, err)
		}
		dests = append(dests, Destination{Name: name, Publisher: pub})
	}

	return dests, nil
}

// Require returns the value of a variable that a destination needs, or an
// error that names it and says which destination needs it.
func Require(env Env, destination, key string) (string, error) {
	value, ok := env(key)
	if !ok || strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("%s is not set; %s=%s needs it", key, EnvDestination, destination)
	}

	return strings.TrimSpace(value), nil
}

func validValues() string {
	names := make([]string, 0, len(known))
	for name := range known {
		names = append(names, name)
	}
	sort.Strings(names)

	return strings.Join(names, ", ")
}

func closeAll(dests []Destination) {
	for _, d := range dests {
		_ = d.Publisher.Close()
	}
}

// Lookup returns a variable's value with spaces trimmed, and whether it is
// set to something other than spaces.
func Lookup(env Env, key string) (string, bool) {
	v, ok := env(key)
	v = strings.TrimSpace(v)

	return v, ok && v != ""
}

// Bytes reads a size in bytes from the variable key, for a destination's
// size limit. It reports false when the variable is unset, and an error that
// names the variable when the value is not a whole number from 1 to limit
// (no upper bound when limit is 0).
func Bytes(env Env, key string, limit int) (int, bool, error) {
	v, ok := Lookup(env, key)
	if !ok {
		return 0, false, nil
	}

	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || (limit > 0 && n > limit) {
		if limit > 0 {
			return 0, false, fmt.Errorf("%s=%q is not a number of bytes between 1 and %d",
				key, v, limit)
		}
		return 0, false, fmt.Errorf("%s=%q is not a positive number of bytes", key, v)
	}

	return n, true, nil
}
