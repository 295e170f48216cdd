package push

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "causeway.dev/causeway/api/push/v1alpha1"
)

// wire is a Response encoded once and shared: every proxy of a group is
// sent the same change (its whole view on a first sync, or the view's
// delta), so the body is marshalled once per view and only the nonce is
// the stream's own. Protobuf parses concatenated messages as one merged
// message, so the nonce field is appended to the shared body.
type wire struct {
	body  []byte // a Response without its nonce; shared, never modified
	nonce string
}

// encoded is a lazily marshalled Response body.
type encoded struct {
	once sync.Once
	b    []byte
	err  error
}

func (e *encoded) get(build func() *pb.Response) ([]byte, error) {
	e.once.Do(func() {
		e.b, e.err = proto.Marshal(build())
		if e.err != nil {
			e.err = fmt.Errorf("encoding response: %w", e.err)
		}
	})
	return e.b, e.err
}

// codec is gRPC's protobuf codec that also sends a *wire as its shared
// body and its nonce, without copying the body.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2("proto")} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*wire); ok {
		tail := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), w.nonce)
		return mem.BufferSlice{mem.SliceBuffer(w.body), mem.SliceBuffer(tail)}, nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (codec) Name() string { return "proto" }
