package sqs_test

import (
	"fmt"
	"testing"

	"github.com/apsoai/domainevents/publishers/publishertest"
	"github.com/apsoai/domainevents/publishers/sqs"
)

// BenchmarkPublisher_parallel publishes one event per call from many
// goroutines, as the relay does, and reports accepted events per second.
func BenchmarkPublisher_parallel(b *testing.B) {
	for _, fifo := range []bool{false, true} {
		name := "standard"
		if fifo {
			name = "fifo"
		}

		b.Run(name, func(b *testing.B) {
			ep := endpoint(b)
			q := newQueue(b, ep, fifo, nil)
			pub := newPublisher(b, sqs.Config{QueueURL: q.url, AWS: awsConfig(ep)})

			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					msg := publishertest.NewEvent("order.updated", fmt.Sprintf("Order:%d", i%64),
						map[string]any{"i": i})
					if err := pub.Publish("ignored", msg); err != nil {
						b.Errorf("Publish: %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
