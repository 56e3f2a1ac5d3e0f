package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/apsoai/domainevents/publishers"
	"github.com/apsoai/domainevents/publishers/kafka"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

func envOf(vars map[string]string) publishers.Env {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

func TestConfigFromEnv_errorsNameTheVariable(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		vars := map[string]string{
			kafka.EnvBrokers: "127.0.0.1:9092",
			kafka.EnvTopic:   "events",
		}
		for k, v := range extra {
			vars[k] = v
		}
		return vars
	}

	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no brokers", map[string]string{kafka.EnvTopic: "events"}, kafka.EnvBrokers},
		{"empty broker entry", base(map[string]string{kafka.EnvBrokers: "a:1,,b:2"}),
			kafka.EnvBrokers},
		{"no topic", map[string]string{kafka.EnvBrokers: "a:1"}, kafka.EnvTopic},
		{"bad tls flag", base(map[string]string{kafka.EnvTLS: "yes please"}), kafka.EnvTLS},
		{"missing ca file", base(map[string]string{kafka.EnvTLSCAFile: "/nonexistent/ca.pem"}),
			kafka.EnvTLSCAFile},
		{"bad mechanism", base(map[string]string{kafka.EnvSASLMechanism: "KERBEROS"}),
			kafka.EnvSASLMechanism},
		{"mechanism without user", base(map[string]string{kafka.EnvSASLMechanism: "PLAIN",
			kafka.EnvSASLPassword: "p"}), kafka.EnvSASLUsername},
		{"mechanism without password", base(map[string]string{
			kafka.EnvSASLMechanism: "SCRAM-SHA-512", kafka.EnvSASLUsername: "u",
		}), kafka.EnvSASLPassword},
		{"user without mechanism", base(map[string]string{kafka.EnvSASLUsername: "u"}),
			kafka.EnvSASLMechanism},
		{"bad max bytes", base(map[string]string{kafka.EnvMaxBytes: "1MB"}), kafka.EnvMaxBytes},
		{"bad version", base(map[string]string{kafka.EnvVersion: "0.8.2.0"}), kafka.EnvVersion},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kafka.ConfigFromEnv(envOf(c.vars))
			if err == nil {
				t.Fatal("ConfigFromEnv returned no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to name %s", err, c.want)
			}
		})
	}
}

func TestConfigFromEnv_readsEveryVariable(t *testing.T) {
	cfg, err := kafka.ConfigFromEnv(envOf(map[string]string{
		kafka.EnvBrokers:       " a:9092 , b:9093 ",
		kafka.EnvTopic:         "events",
		kafka.EnvTLS:           "true",
		kafka.EnvSASLMechanism: "scram-sha-256",
		kafka.EnvSASLUsername:  "svc",
		kafka.EnvSASLPassword:  " secret with spaces ",
		kafka.EnvMaxBytes:      "500000",
		kafka.EnvVersion:       "3.6.0",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}

	if strings.Join(cfg.Brokers, "|") != "a:9092|b:9093" {
		t.Errorf("Brokers = %q", cfg.Brokers)
	}
	if cfg.Topic != "events" || cfg.MaxBytes != 500000 || cfg.Version != "3.6.0" {
		t.Errorf("Topic, MaxBytes, Version = %q, %d, %q", cfg.Topic, cfg.MaxBytes, cfg.Version)
	}
	if cfg.TLS == nil {
		t.Error("TLS is nil with EVENTS_KAFKA_TLS=true")
	}
	want := kafka.SASL{Mechanism: kafka.MechanismSCRAMSHA256, Username: "svc",
		Password: " secret with spaces "}
	if cfg.SASL != want {
		t.Errorf("SASL = %+v, want %+v", cfg.SASL, want)
	}
}

func TestConfigFromEnv_plaintextByDefault(t *testing.T) {
	cfg, err := kafka.ConfigFromEnv(envOf(map[string]string{
		kafka.EnvBrokers: "a:9092",
		kafka.EnvTopic:   "events",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if cfg.TLS != nil || cfg.SASL != (kafka.SASL{}) {
		t.Fatalf("TLS = %v, SASL = %+v; want neither by default", cfg.TLS, cfg.SASL)
	}
}

func TestPublisher_SASL(t *testing.T) {
	const user, pass = "events-svc", "pa,ss=word"

	cases := []struct {
		mechanism string
		reader    sasl.Mechanism
	}{
		{kafka.MechanismPlain, plain.Auth{User: user, Pass: pass}.AsMechanism()},
		{kafka.MechanismSCRAMSHA256, scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()},
		{kafka.MechanismSCRAMSHA512, scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()},
	}

	for _, c := range cases {
		t.Run(c.mechanism, func(t *testing.T) {
			cluster := startCluster(t, kfake.EnableSASL(), kfake.Superuser(c.mechanism, user, pass))
			cfg := testConfig(cluster)
			cfg.SASL = kafka.SASL{Mechanism: c.mechanism, Username: user, Password: pass}
			pub := newPublisher(t, cfg)
			r := startReader(t, cluster, kgo.SASL(c.reader))

			msg := publishertest.NewEvent("user.created", "User:1", map[string]any{"id": 1})
			if err := pub.Publish(testTopic, msg); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			recs := r.waitForRecords(t, 1)
			if got := headers(recs[0])[kafka.HeaderEventID]; got != msg.UUID {
				t.Fatalf("read event %s, want %s", got, msg.UUID)
			}

			bad := cfg
			bad.SASL.Password = "wrong"
			if pub, err := kafka.New(bad); err == nil {
				_ = pub.Close()
				t.Fatal("New with a wrong password succeeded")
			}
		})
	}
}

func TestFactory_TLSWithCAFile(t *testing.T) {
	serverTLS, caFile := selfSignedTLS(t)
	cluster := startCluster(t, kfake.TLS(serverTLS))

	dests, err := publishers.FromEnv(envOf(map[string]string{
		publishers.EnvDestination: "kafka",
		kafka.EnvBrokers:          strings.Join(cluster.ListenAddrs(), ","),
		kafka.EnvTopic:            testTopic,
		kafka.EnvTLSCAFile:        caFile,
	}), nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if len(dests) != 1 || dests[0].Name != "kafka" {
		t.Fatalf("FromEnv returned %v, want the kafka destination", dests)
	}
	pub := dests[0].Publisher
	t.Cleanup(func() { _ = pub.Close() })

	pool := x509.NewCertPool()
	pool.AddCert(serverTLS.Certificates[0].Leaf)
	r := startReader(t, cluster, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))

	msg := publishertest.NewEvent("user.created", "User:1", map[string]any{"id": 1})
	if err := pub.Publish(testTopic, msg); err != nil {
		t.Fatalf("Publish over TLS: %v", err)
	}
	recs := r.waitForRecords(t, 1)
	if string(recs[0].Value) != string(msg.Payload) {
		t.Fatalf("value = %s, want %s", recs[0].Value, msg.Payload)
	}
}

func TestFactory_TLSRefusesUnknownCA(t *testing.T) {
	serverTLS, _ := selfSignedTLS(t)
	cluster := startCluster(t, kfake.TLS(serverTLS))
	_, otherCA := selfSignedTLS(t)

	_, err := publishers.FromEnv(envOf(map[string]string{
		publishers.EnvDestination: "kafka",
		kafka.EnvBrokers:          strings.Join(cluster.ListenAddrs(), ","),
		kafka.EnvTopic:            testTopic,
		kafka.EnvTLSCAFile:        otherCA,
	}), nil)
	if err == nil {
		t.Fatal("FromEnv trusted a broker whose certificate the CA file does not sign")
	}
}

// selfSignedTLS makes a certificate for 127.0.0.1 and returns a server
// configuration using it and the path of a PEM file holding it.
func selfSignedTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "kfake test broker"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}

	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		0o600); err != nil {
		t.Fatalf("write CA file: %v", err)
	}

	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}

	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, path
}
