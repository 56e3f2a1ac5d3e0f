package webhook

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/apsoai/domainevents/publishers"
)

// Name is the destination's name in EVENTS_DESTINATION.
const Name = "webhook"

func init() {
	publishers.Register(Name, fromEnv)
}

// fromEnv builds the destination from EVENTS_WEBHOOK_URL and
// EVENTS_WEBHOOK_SECRET.
func fromEnv(env publishers.Env, logger *slog.Logger) (message.Publisher, error) {
	rawURL, err := publishers.Require(env, Name, EnvURL)
	if err != nil {
		return nil, err
	}

	secret, err := publishers.Require(env, Name, EnvSecret)
	if err != nil {
		return nil, err
	}

	pub, err := New(Config{URL: rawURL, Secret: secret, Logger: logger})
	if err != nil {
		return nil, err
	}

	return pub, nil
}
