package eventbridge_test

import (
	"testing"

	"github.com/apsoai/domainevents/publishers/eventbridge"
	"github.com/apsoai/domainevents/publishers/publishertest"
)

// BenchmarkPublisher_parallel publishes one event per call from many
// goroutines, as the relay does, against a local fake of PutEvents, and
// reports accepted events per second and entries per request.
func BenchmarkPublisher_parallel(b *testing.B) {
	fake := newFakeBus(b)
	pub := newPublisher(b, eventbridge.Config{EventBus: testBus, AWS: fake.awsConfig()})

	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			msg := publishertest.NewEvent("order.updated", "", map[string]any{"n": 1})
			if err := pub.Publish("ignored", msg); err != nil {
				b.Errorf("Publish: %v", err)
				return
			}
		}
	})
	b.StopTimer()

	requests, accepted := fake.snapshot(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(accepted))/float64(max(len(requests), 1)), "entries/request")
}
