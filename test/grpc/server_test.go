package grpctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// maxMsg lets clients and servers exchange the 8 MiB messages of the tests.
const maxMsg = 16 << 20

// Metadata the test service understands, after grpc-go's interop tests.
const (
	echoInitial  = "x-grpc-test-echo-initial"      // echoed back as a header
	echoTrailing = "x-grpc-test-echo-trailing-bin" // echoed back as a trailer
	sleepKey     = "x-sleep"                       // any value: wait for the deadline
)

// payload returns n bytes of a pattern that checkPayload recognises, so a
// shifted or truncated message cannot pass.
func payload(n int) *testgrpc.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return &testgrpc.Payload{Type: testgrpc.PayloadType_COMPRESSABLE, Body: b}
}

func checkPayload(p *testgrpc.Payload, n int) error {
	b := p.GetBody()
	if len(b) != n {
		return fmt.Errorf("payload of %d bytes, want %d", len(b), n)
	}
	for i := range b {
		if b[i] != byte(i*7+i>>12) {
			return fmt.Errorf("payload differs at byte %d", i)
		}
	}
	return nil
}

// testService implements grpc.testing.TestService on a real grpc-go server.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	name string // returned as SimpleResponse.ServerId
}

// startServer serves a testService named name on a loopback port and
// returns the port; the server stops at cleanup.
func startServer(t testing.TB, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	testgrpc.RegisterTestServiceServer(s, &testService{name: name})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

// echoMetadata sends back the echo headers and trailers, the x-via header
// the gateway adds, and the deadline the server sees, in milliseconds.
func echoMetadata(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	hdr := metadata.MD{}
	if v := md.Get(echoInitial); len(v) > 0 {
		hdr.Set(echoInitial, v...)
	}
	if v := md.Get("x-via"); len(v) > 0 {
		hdr.Set("x-seen-via", v...)
	}
	if d, ok := ctx.Deadline(); ok {
		hdr.Set("x-deadline-ms", strconv.FormatInt(time.Until(d).Milliseconds(), 10))
	}
	_ = grpc.SetHeader(ctx, hdr)
	if v := md.Get(echoTrailing); len(v) > 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(echoTrailing, v[0]))
	}
}

func echoStatus(s *testgrpc.EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(s.Code), s.Message)
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	echoMetadata(ctx)
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(sleepKey)) > 0 {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err := echoStatus(in.ResponseStatus); err != nil {
		return nil, err
	}
	if in.Payload != nil {
		if err := checkPayload(in.Payload, len(in.Payload.Body)); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return &testgrpc.SimpleResponse{Payload: payload(int(in.ResponseSize)), ServerId: s.name}, nil
}

func (s *testService) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	echoMetadata(stream.Context())
	for _, p := range in.ResponseParameters {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(int(p.Size))}); err != nil {
			return err
		}
	}
	return echoStatus(in.ResponseStatus)
}

func (s *testService) StreamingInputCall(stream grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	var sum int32
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		if err := checkPayload(in.Payload, len(in.Payload.GetBody())); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		sum += int32(len(in.Payload.GetBody()))
	}
}

func (s *testService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	echoMetadata(stream.Context())
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(in.ResponseStatus); err != nil {
			return err
		}
		for _, p := range in.ResponseParameters {
			if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(int(p.Size))}); err != nil {
				return err
			}
		}
	}
}
