package integration_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// brokersClientModules are the module paths of the broker clients that a
// service without a broker destination must not link.
var brokersClientModules = []string{
	"github.com/IBM/sarama",
	"github.com/aws/aws-sdk-go-v2",
	"github.com/aws/smithy-go",
	"github.com/ThreeDotsLabs/watermill-kafka",
	"github.com/ThreeDotsLabs/watermill-aws",
}

// brokersDeps lists the packages that pkg links, as go list -deps reports
// them from the module root.
func brokersDeps(t *testing.T, pkg string) []string {
	t.Helper()

	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			stderr = exitErr.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}

	return strings.Fields(string(out))
}

// brokersClients returns the packages of deps that belong to a broker
// client module.
func brokersClients(deps []string) []string {
	var found []string
	for _, dep := range deps {
		for _, mod := range brokersClientModules {
			if dep == mod || strings.HasPrefix(dep, mod+"/") {
				found = append(found, dep)
			}
		}
	}

	return found
}

// TestWebhookOnly_linksNoBrokerClient proves that a service importing only
// the root package and the webhook destination links no Kafka or AWS client.
func TestWebhookOnly_linksNoBrokerClient(t *testing.T) {
	deps := brokersDeps(t, "./bench/sizes/webhookonly")

	if !slices.Contains(deps, "github.com/apsoai/domainevents/publishers/webhook") {
		t.Fatalf("the webhook-only program does not link the webhook destination; deps:\n%s",
			strings.Join(deps, "\n"))
	}
	if found := brokersClients(deps); len(found) > 0 {
		t.Errorf("the webhook-only program links broker clients:\n%s",
			strings.Join(found, "\n"))
	}
}

// TestExampleShop_linksEveryBrokerClient checks the other side: the shop,
// which imports every destination, links both clients.
func TestExampleShop_linksEveryBrokerClient(t *testing.T) {
	found := brokersClients(brokersDeps(t, "./example"))

	// The shop imports every destination; if it linked none of the clients,
	// the webhook-only check above could not tell them apart either.
	for _, mod := range []string{"github.com/IBM/sarama", "github.com/aws/aws-sdk-go-v2"} {
		linked := slices.ContainsFunc(found, func(dep string) bool {
			return strings.HasPrefix(dep, mod)
		})
		if !linked {
			t.Errorf("the example shop does not link %s", mod)
		}
	}
}
