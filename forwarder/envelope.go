package forwarder

import (
	"encoding/json"
	"fmt"
)

// envelope is the JSON shape of Watermill's forwarder envelope
// (components/forwarder). The type is unexported there, but the shape is a
// stored format, so it is written and read here field for field; the
// round-trip test pins it against the forwarder itself.
type envelope struct {
	DestinationTopic string            `json:"destination_topic"`
	UUID             string            `json:"uuid"`
	Payload          []byte            `json:"payload"`
	Metadata         map[string]string `json:"metadata"`
}

func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode forwarder envelope: %w", err)
	}
	if e.DestinationTopic == "" || e.UUID == "" {
		return e, fmt.Errorf("forwarder envelope lacks destination_topic or uuid")
	}

	return e, nil
}
