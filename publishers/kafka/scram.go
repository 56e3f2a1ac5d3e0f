package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

func sha256Hash() hash.Hash { return sha256.New() }

func sha512Hash() hash.Hash { return sha512.New() }

// gs2Header says the client does not use channel binding and authenticates
// as itself (RFC 5802, section 7).
const gs2Header = "n,,"

// scramClient is the client side of one SCRAM exchange (RFC 5802), as
// Sarama drives it: Begin, then Step once per server message until Done.
type scramClient struct {
	newHash  func() hash.Hash
	user     string
	password string

	step        int
	clientNonce string
	firstBare   string

	// serverSignature is what the server must send in its final message.
	serverSignature []byte
}

func newSCRAMClient(newHash func() hash.Hash) *scramClient {
	return &scramClient{newHash: newHash}
}

// Begin starts an exchange for the given credentials. Kafka has no use for
// an authorization id, so a non-empty one is refused.
func (c *scramClient) Begin(user, password, authzID string) error {
	if authzID != "" {
		return errors.New("kafka: scram: authorization ids are not supported")
	}

	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("kafka: scram: read nonce: %w", err)
	}

	*c = scramClient{
		newHash:     c.newHash,
		user:        user,
		password:    password,
		clientNonce: base64.RawStdEncoding.EncodeToString(nonce),
	}

	return nil
}

// Step answers one server message: the empty challenge that starts the
// exchange, the server-first message, then the server-final message.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++

	switch c.step {
	case 1:
		c.firstBare = "n=" + escapeSASLName(c.user) + ",r=" + c.clientNonce
		return gs2Header + c.firstBare, nil
	case 2:
		return c.clientFinal(challenge)
	case 3:
		return "", c.verifyServerFinal(challenge)
	default:
		return "", errors.New("kafka: scram: server sent more messages than the exchange has")
	}
}

// Done reports whether the exchange is over.
func (c *scramClient) Done() bool {
	return c.step >= 3
}

func (c *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs := parseSCRAMAttributes(serverFirst)
	if msg, ok := attrs["e"]; ok {
		return "", fmt.Errorf("kafka: scram: server refused: %s", msg)
	}

	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return "", errors.New("kafka: scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || len(salt) == 0 {
		return "", errors.New("kafka: scram: server sent no valid salt")
	}
	iterations, err := strconv.Atoi(attrs["i"])
	if err != nil || iterations < 1 {
		return "", errors.New("kafka: scram: server sent no valid iteration count")
	}

	salted, err := pbkdf2.Key(c.newHash, c.password, salt, iterations, c.newHash().Size())
	if err != nil {
		return "", fmt.Errorf("kafka: scram: derive salted password: %w", err)
	}

	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	authMessage := c.firstBare + "," + serverFirst + "," + withoutProof

	clientKey := c.hmac(salted, "Client Key")
	storedKey := c.digest(clientKey)
	proof := c.hmac(storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)

	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) verifyServerFinal(serverFinal string) error {
	attrs := parseSCRAMAttributes(serverFinal)
	if msg, ok := attrs["e"]; ok {
		return fmt.Errorf("kafka: scram: server refused: %s", msg)
	}

	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil || subtle.ConstantTimeCompare(got, c.serverSignature) != 1 {
		return errors.New("kafka: scram: server signature does not match; not the real server")
	}

	return nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	mac := hmac.New(c.newHash, key)
	mac.Write([]byte(msg))

	return mac.Sum(nil)
}

func (c *scramClient) digest(b []byte) []byte {
	h := c.newHash()
	h.Write(b)

	return h.Sum(nil)
}

// parseSCRAMAttributes splits "a=1,b=2" into its attributes. Values may
// contain "=", as base64 does.
func parseSCRAMAttributes(msg string) map[string]string {
	attrs := map[string]string{}
	for _, part := range strings.Split(msg, ",") {
		name, value, ok := strings.Cut(part, "=")
		if ok && len(name) == 1 {
			attrs[name] = value
		}
	}

	return attrs
}

// escapeSASLName escapes the two characters a SCRAM user name cannot carry.
func escapeSASLName(name string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}
