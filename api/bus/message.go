package bus

import "encoding/json"

// EventType is what happened to a host object.
type EventType string

// Event types.
const (
	Upserted EventType = "Upserted"
	Deleted  EventType = "Deleted"
)

// Message is the body of a host change on its subject. Trace context
// travels in the NATS headers (W3C "traceparent"/"tracestate"), not here.
type Message struct {
	Type EventType `json:"type"`
	// ResourceVersion is the host object's resourceVersion (for ordering
	// and for dropping stale replays).
	ResourceVersion string `json:"resourceVersion"`
	// Object is the host object as JSON; for Deleted, its last state.
	Object json.RawMessage `json:"object"`
}

// Header keys of a host change.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)
