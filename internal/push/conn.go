package push

import (
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "causeway.dev/causeway/api/push/v1alpha1"
)

// conn is the state of one proxy's stream. Only its stream goroutine
// changes it; mu guards what the status table reads.
type conn struct {
	node     *pb.Node
	identity string // how it was authorised: "token" or "certificate GATEWAYS"
	peer     string
	since    time.Time
	group    *group
	kick     chan struct{}

	mu           sync.Mutex
	acked        map[string]*pb.Resource // what the proxy runs; shared, never modified
	ackedVersion string
	pending      *sent // the unacknowledged Response, if any
	nacked       string
	lastNack     *Nack
	ackedAt      time.Time
}

// sent is a Response awaiting its ACK or NACK.
type sent struct {
	nonce   string
	version string
	res     map[string]*pb.Resource
	at      time.Time
}

// Nack is a refusal reported by a proxy.
type Nack struct {
	Version string    `json:"version"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

func (c *conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// wants reports whether next would return a Response now, so that the
// stream takes an in-flight token only when it has something to send.
func (c *conn) wants() bool {
	v := c.group.view.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if v != nil && v.version == c.ackedVersion {
		// Back to what the proxy runs: an earlier refusal is moot.
		c.nacked, c.lastNack = "", nil
	}
	return v != nil && c.pending == nil && v.version != c.nacked && v.version != c.ackedVersion
}

// next returns the Response that brings the proxy to its group's view, or
// nil when it is there, when a Response awaits acknowledgement (changes
// meanwhile are coalesced into the next one), or when that view was
// refused already. A first sync and the group's common change are sent
// from the view's shared encoding; only other cases are marshalled here.
func (c *conn) next(nonce func() string) (*wire, error) {
	v := c.group.view.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == nil || c.pending != nil || v.version == c.nacked || v.version == c.ackedVersion {
		return nil, nil
	}
	var body []byte
	var err error
	switch {
	case len(c.acked) == 0:
		body, err = v.fullBody()
	case v.prev != "" && v.prev == c.ackedVersion:
		body, err = v.deltaBody()
	default:
		changed, removed := diff(c.acked, v.res)
		body, err = proto.Marshal(&pb.Response{Version: v.version, Resources: changed, Removed: removed})
	}
	if err != nil {
		return nil, err
	}
	w := &wire{body: body, nonce: nonce()}
	c.pending = &sent{nonce: w.nonce, version: v.version, res: v.res, at: time.Now()}
	return w, nil
}

// handle records an ACK or NACK and reports whether it answered the
// pending Response; requests with another nonce are stale and ignored.
func (c *conn) handle(log *slog.Logger, r *pb.Request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	if p == nil || r.GetResponseNonce() != p.nonce {
		return false
	}
	c.pending = nil
	if e := r.GetErrorDetail(); e != nil {
		c.nacked = p.version
		c.lastNack = &Nack{Version: p.version, Message: e.GetMessage(), At: time.Now()}
		log.Warn("proxy refused configuration", "node", c.node.GetId(), "version", p.version, "error", e.GetMessage())
		return true
	}
	c.acked, c.ackedVersion, c.ackedAt = p.res, p.version, time.Now()
	c.nacked, c.lastNack = "", nil
	return true
}
