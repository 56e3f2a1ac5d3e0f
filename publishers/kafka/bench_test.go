package kafka_test

import (
	"fmt"
	"testing"

	"github.com/apsoai/domainevents/publishers/publishertest"
)

// BenchmarkPublisher_parallel publishes one event per call from many
// goroutines, as the relay does, against an in-process cluster, and reports
// acknowledged events per second.
func BenchmarkPublisher_parallel(b *testing.B) {
	cluster := startCluster(b)
	pub := newPublisher(b, testConfig(cluster))

	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			msg := publishertest.NewEvent("order.updated", fmt.Sprintf("Order:%d", i%64),
				map[string]any{"i": i})
			if err := pub.Publish(testTopic, msg); err != nil {
				b.Errorf("Publish: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
