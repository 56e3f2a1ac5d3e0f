package bunhooks

import (
	"context"
	"maps"
	"regexp"

	"go.opentelemetry.io/otel/trace"

	"github.com/apsoai/domainevents/publishers"
)

type metadataKey struct{}

// WithMetadata returns a context whose units of work store md with each of
// their events, merged over metadata the context already carries. Metadata
// travels to destinations that have headers (webhook headers, Kafka headers,
// SQS message attributes). The Gin middleware uses it for the request's
// traceparent header.
func WithMetadata(ctx context.Context, md map[string]string) context.Context {
	merged := maps.Clone(MetadataFrom(ctx))
	if merged == nil {
		merged = make(map[string]string, len(md))
	}
	maps.Copy(merged, md)

	return context.WithValue(ctx, metadataKey{}, merged)
}

// MetadataFrom returns the metadata [WithMetadata] put in ctx.
func MetadataFrom(ctx context.Context) map[string]string {
	md, _ := ctx.Value(metadataKey{}).(map[string]string)
	return md
}

// traceParent matches a W3C traceparent header of version 00.
var traceParent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// ValidTraceParent reports whether s is a W3C traceparent value this library
// carries.
func ValidTraceParent(s string) bool {
	return traceParent.MatchString(s)
}

// unitMetadata is the metadata of a unit of work begun with ctx: the trace
// context of an OpenTelemetry span in ctx, then what WithMetadata put there,
// then what Config.Metadata returns, each over the one before.
func (c *Capture) unitMetadata(ctx context.Context) map[string]string {
	md := map[string]string{}

	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		md[publishers.MetadataTraceParent] = "00-" + sc.TraceID().String() + "-" +
			sc.SpanID().String() + "-" + sc.TraceFlags().String()
	}
	maps.Copy(md, MetadataFrom(ctx))
	if c.cfg.Metadata != nil {
		maps.Copy(md, c.cfg.Metadata(ctx))
	}

	if len(md) == 0 {
		return nil
	}

	return md
}
