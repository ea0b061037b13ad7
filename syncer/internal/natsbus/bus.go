package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kplex.dev/api/bus"
)

// StreamName is the JetStream stream of host changes.
const StreamName = "KPLEX_HOST"

// DeletedTTL is how long a Deleted message stays as its subject's last
// value: long enough for every shard to see it, short enough that deleted
// objects do not pile up in the stream.
const DeletedTTL = time.Hour

// EventsResource is the resource token of host Events about tenant
// objects. They are published once (no deletions) and expire after
// DeletedTTL, like deletions.
const EventsResource = "events"

// Config says how to reach the bus.
type Config struct {
	// URL of the NATS servers; empty starts an in-process server.
	URL string
	// StoreDir is the in-process server's JetStream directory.
	StoreDir string
	// Name identifies this client in the server's connection list.
	Name string
	// Replicas of the stream when this client creates it (1 for a single
	// server).
	Replicas int
	Log      *slog.Logger
}

// Bus is a connection to the host change stream.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	srv    *server.Server
	log    *slog.Logger

	mu       sync.Mutex
	reconnCh chan struct{} // closed at a reconnect, then replaced
}

// Open connects (or starts an in-process server), and creates the stream
// if it does not exist yet. Reconnects are unlimited: a NATS restart is
// survived, with publishes failing (and retried by callers) meanwhile.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	b := &Bus{log: cfg.Log, reconnCh: make(chan struct{})}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if cfg.Log != nil {
				cfg.Log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			if cfg.Log != nil {
				cfg.Log.Info("nats reconnected", "url", c.ConnectedUrl())
			}
			b.onReconnect()
		}),
	)
	url := cfg.URL
	if url == "" {
		srv, err := RunServer(ServerConfig{StoreDir: cfg.StoreDir})
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to nats %q: %w", url, err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	replicas := max(cfg.Replicas, 1)
	for {
		b.stream, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              StreamName,
			Description:       "kplex host changes: last value per host object",
			Subjects:          []string{bus.Prefix + ".>"},
			MaxMsgsPerSubject: 1,
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			AllowMsgTTL:       true,
		})
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			b.Close()
			return nil, fmt.Errorf("create stream %s on %q: %w", StreamName, url, err)
		}
		if cfg.Log != nil {
			cfg.Log.Warn("nats stream not available yet; retrying", "stream", StreamName, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Close disconnects and stops an in-process server.
func (b *Bus) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// JetStream is the bus's JetStream context (for the ownership buckets).
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Connected reports whether the connection is up (readiness).
func (b *Bus) Connected() bool { return b.nc != nil && b.nc.IsConnected() }

// Publish sends a host change on its subject and waits for the stream's
// acknowledgement. Deleted messages expire after DeletedTTL.
func (b *Bus) Publish(ctx context.Context, k bus.Key, m bus.Message, hdr nats.Header) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k.Subject(), err)
	}
	var opts []jetstream.PublishOpt
	if m.Type == bus.Deleted || k.Resource == EventsResource {
		opts = append(opts, jetstream.WithMsgTTL(DeletedTTL))
	}
	if _, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: k.Subject(), Header: hdr, Data: data}, opts...); err != nil {
		return fmt.Errorf("publish %s: %w", k.Subject(), err)
	}
	return nil
}

// Delivery is one message read from the stream.
type Delivery struct {
	Key     bus.Key
	Message bus.Message
	Header  nats.Header
}

// Follow replays the last value of every subject matching filter, then
// follows new ones, calling handle for each in stream order. replayed is
// called once, after the first replay (at once when there was nothing to
// replay). It returns when ctx ends.
//
// After a reconnect (a NATS restart) or a consumer that stopped, it
// replays the filter's last values again and goes on from there: what was
// published meanwhile arrives as the subjects' last values, so nothing is
// missed (handle must treat a message as the object's latest state, which
// a replay of an unchanged subject repeats).
func (b *Bus) Follow(ctx context.Context, filter string, handle func(Delivery), replayed func()) error {
	var once sync.Once
	replay := func() { once.Do(replayed) }
	for attempt := 0; ; attempt++ {
		reconnected := b.reconnected()
		err := b.followOnce(ctx, filter, handle, replay, reconnected)
		if ctx.Err() != nil {
			return nil
		}
		if b.log != nil {
			b.log.Info("following the bus again from the last values", "filter", filter, "reason", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

// followOnce runs one ordered consumer until ctx ends, the connection is
// re-established, or the consumer stops; it says which.
func (b *Bus) followOnce(ctx context.Context, filter string, handle func(Delivery), replay func(), reconnected <-chan struct{}) error {
	cons, err := b.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", filter, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("follow %s: %w", filter, err)
	}
	if info.NumPending == 0 {
		replay()
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		d, derr := decode(msg)
		if derr == nil {
			handle(d)
		} else if b.log != nil {
			b.log.Warn("ignoring a bus message that does not decode", "subject", msg.Subject(), "err", derr)
		}
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			replay()
		}
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", filter, err)
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-reconnected:
		return errors.New("reconnected to nats")
	case <-cc.Closed():
		return errors.New("the consumer stopped")
	}
}

// reconnected returns a channel closed at the next reconnect.
func (b *Bus) reconnected() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reconnCh
}

func (b *Bus) onReconnect() {
	b.mu.Lock()
	close(b.reconnCh)
	b.reconnCh = make(chan struct{})
	b.mu.Unlock()
}

// LastValues returns the last message of every subject matching filter
// (the relay compares them with the host when it starts).
func (b *Bus) LastValues(ctx context.Context, filter string) ([]Delivery, error) {
	cons, err := b.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filter, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filter, err)
	}
	var out []Delivery
	for pending := info.NumPending; pending > 0; {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filter, err)
		}
		if d, err := decode(msg); err == nil {
			out = append(out, d)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filter, err)
		}
		pending = md.NumPending
	}
	return out, nil
}

func decode(msg jetstream.Msg) (Delivery, error) {
	k, err := bus.ParseSubject(msg.Subject())
	if err != nil {
		return Delivery{}, err
	}
	var m bus.Message
	if err := json.Unmarshal(msg.Data(), &m); err != nil {
		return Delivery{}, fmt.Errorf("decode %s: %w", msg.Subject(), err)
	}
	if m.Type != bus.Upserted && m.Type != bus.Deleted {
		return Delivery{}, errors.New("unknown message type " + string(m.Type))
	}
	return Delivery{Key: k, Message: m, Header: msg.Headers()}, nil
}
