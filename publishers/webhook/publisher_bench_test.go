package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/webhook"
)

// BenchmarkPublisher_Publish measures signed deliveries per second from
// many goroutines to a local receiver that reads each body and answers 204.
func BenchmarkPublisher_Publish(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)

	pub, err := webhook.New(webhook.Config{URL: srv.URL, Secret: testSecret})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	b.Cleanup(func() { _ = pub.Close() })

	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()

	b.RunParallel(func(pb *testing.PB) {
		msg := publishertest.NewEvent("product.updated", "Product:1", map[string]any{
			"id": 1, "name": "desk lamp", "price_cents": 4599, "tags": []string{"home", "light"},
		})
		for pb.Next() {
			if err := pub.Publish("", msg); err != nil {
				b.Errorf("Publish: %v", err)
				return
			}
		}
	})

	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
