package grpctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"causeway.dev/causeway/test/testbin"
)

// configYAML is a Gateway on 127.0.0.1:port and a GRPCRoute that sends
// grpc.testing.TestService to the "main" server (mainPort), UnaryCall with
// header x-route: alt to the "alt" server, ReconnectService to a Service
// without endpoints and LoadBalancerStatsService to a missing Service. The
// Service ports have no appProtocol: GRPCRoute backends speak h2c anyway.
func configYAML(port, mainPort, altPort int) string {
	svc := func(name string, target int) string {
		s := fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: %s}
spec:
  ports: [{name: grpc, port: 50051}]
`, name)
		if target > 0 {
			s += fmt.Sprintf(`---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-1
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports: [{name: grpc, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
`, name, name, target)
		}
		return s
	}
	return testbin.GatewayYAML("gw") + fmt.Sprintf(`  listeners:
  - {name: grpc, protocol: HTTP, port: %d}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: test}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - method: {service: grpc.testing.TestService, method: UnaryCall}
      headers: [{name: x-route, value: alt}]
    backendRefs: [{name: alt, port: 50051}]
  - matches:
    - method: {service: grpc.testing.TestService}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-via, value: causeway}]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-gateway, value: causeway}]
    backendRefs: [{name: main, port: 50051}]
  - matches: [{method: {service: grpc.testing.ReconnectService}}]
    backendRefs: [{name: empty, port: 50051}]
  - matches: [{method: {service: grpc.testing.LoadBalancerStatsService}}]
    backendRefs: [{name: missing, port: 50051}]
%s%s%s`, port, svc("main", mainPort), svc("alt", altPort), svc("empty", 0))
}

// setup starts the two servers and a gateway in front of them and returns
// a client connection through the gateway and one straight to "main".
func setup(t testing.TB) (viaGateway, direct *grpc.ClientConn) {
	t.Helper()
	mainPort, altPort := startServer(t, "main"), startServer(t, "alt")
	port := freePort(t)
	startGateway(t, configYAML(port, mainPort, altPort))
	dial := func(port int) *grpc.ClientConn {
		cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	return dial(port), dial(mainPort)
}

func TestGRPCThroughGateway(t *testing.T) {
	cc, _ := setup(t)
	tc := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("unary", func(t *testing.T) {
		var hdr metadata.MD
		resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 314, Payload: payload(271)}, grpc.Header(&hdr))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPayload(resp.Payload, 314); err != nil {
			t.Error(err)
		}
		if resp.ServerId != "main" {
			t.Errorf("served by %q, want main", resp.ServerId)
		}
		if got := hdr.Get("x-seen-via"); len(got) != 1 || got[0] != "causeway" {
			t.Errorf("RequestHeaderModifier: server saw x-via %q", got)
		}
		if got := hdr.Get("x-gateway"); len(got) != 1 || got[0] != "causeway" {
			t.Errorf("ResponseHeaderModifier: x-gateway %q", got)
		}
	})

	t.Run("header match", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(ctx, "x-route", "alt")
		resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ServerId != "alt" {
			t.Errorf("served by %q, want alt", resp.ServerId)
		}
	})

	t.Run("large messages", func(t *testing.T) {
		const size = 8 << 20
		resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: size, Payload: payload(size)})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPayload(resp.Payload, size); err != nil {
			t.Error(err)
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		var params []*testgrpc.ResponseParameters
		for i := range 200 {
			params = append(params, &testgrpc.ResponseParameters{Size: int32(i * 97)})
		}
		params = append(params, &testgrpc.ResponseParameters{Size: 4 << 20})
		stream, err := tc.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range params {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if err := checkPayload(m.Payload, int(p.Size)); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("end of stream: %v, want io.EOF", err)
		}
	})

	t.Run("client streaming", func(t *testing.T) {
		stream, err := tc.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for i := range 100 {
			n := i*1013 + 1
			if i == 50 {
				n = 3 << 20
			}
			sum += n
			if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		resp, err := stream.CloseAndRecv()
		if err != nil {
			t.Fatal(err)
		}
		if int(resp.AggregatedPayloadSize) != sum {
			t.Errorf("server counted %d bytes, want %d", resp.AggregatedPayloadSize, sum)
		}
	})

	t.Run("bidirectional", func(t *testing.T) {
		stream, err := tc.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Ping-pong: each answer must come back before the next request
		// goes, so nothing may be buffered on the way in either direction.
		for i := range 50 {
			size := i*31 + 1
			req := &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: int32(size)}}, Payload: payload(i)}
			if err := stream.Send(req); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("recv %d: %v", i, err)
			}
			if err := checkPayload(m.Payload, size); err != nil {
				t.Fatalf("recv %d: %v", i, err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("end of stream: %v, want io.EOF", err)
		}
	})

	t.Run("metadata and trailers", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(ctx, echoInitial, "hello", echoTrailing, "\x00\xffbinary")
		var hdr, trl metadata.MD
		if _, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1}, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
			t.Fatal(err)
		}
		if got := hdr.Get(echoInitial); len(got) != 1 || got[0] != "hello" {
			t.Errorf("header %q", got)
		}
		if got := trl.Get(echoTrailing); len(got) != 1 || got[0] != "\x00\xffbinary" {
			t.Errorf("trailer %q", got)
		}
		// The same on a stream, where trailers follow the messages.
		stream, err := tc.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 5}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if got := stream.Trailer().Get(echoTrailing); len(got) != 1 || got[0] != "\x00\xffbinary" {
			t.Errorf("stream trailer %q", got)
		}
	})

	t.Run("status codes pass through", func(t *testing.T) {
		msg := "test status \t message ☺ 100%"
		for _, code := range []codes.Code{codes.InvalidArgument, codes.NotFound, codes.Unavailable, codes.Internal, codes.Unknown} {
			_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: msg}})
			if s := status.Convert(err); s.Code() != code || s.Message() != msg {
				t.Errorf("unary: got %v %q, want %v %q", s.Code(), s.Message(), code, msg)
			}
		}
		// After messages, on a stream: the status arrives as a trailer.
		stream, err := tc.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 20}},
			ResponseStatus:     &testgrpc.EchoStatus{Code: int32(codes.ResourceExhausted), Message: msg},
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stream.Recv(); status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != msg {
			t.Errorf("stream: got %v, want ResourceExhausted %q", err, msg)
		}
	})

	t.Run("deadline propagation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var hdr metadata.MD
		if _, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
			t.Fatal(err)
		}
		got := hdr.Get("x-deadline-ms")
		if len(got) != 1 {
			t.Fatalf("server saw no deadline (grpc-timeout not forwarded)")
		}
		if ms, _ := strconv.Atoi(got[0]); ms <= 0 || ms > 5000 {
			t.Errorf("server deadline %sms, want within the client's 5s", got[0])
		}
	})

	t.Run("deadline exceeded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, sleepKey, "1"), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("got %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("deadline of 300ms reported after %v", d)
		}
	})

	t.Run("no route is UNIMPLEMENTED", func(t *testing.T) {
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("got %v, want Unimplemented", err)
		}
	})

	t.Run("no endpoints is UNAVAILABLE", func(t *testing.T) {
		_, err := testgrpc.NewReconnectServiceClient(cc).Start(ctx, &testgrpc.ReconnectParams{})
		if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() == "" {
			t.Errorf("got %v, want Unavailable with a message", err)
		}
	})

	t.Run("invalid backend is UNAVAILABLE", func(t *testing.T) {
		_, err := testgrpc.NewLoadBalancerStatsServiceClient(cc).GetClientStats(ctx, &testgrpc.LoadBalancerStatsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("got %v, want Unavailable", err)
		}
	})

	t.Run("concurrent streams", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: int32(1000 + i), Payload: payload(i * 100)})
				if err == nil {
					err = checkPayload(resp.Payload, 1000+i)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// The gateway's cost per unary call: compare calls/s (1/ns/op) of the two.
func BenchmarkUnaryThroughCauseway(b *testing.B) {
	cc, _ := setup(b)
	benchUnary(b, cc)
}

func BenchmarkUnaryDirect(b *testing.B) {
	_, cc := setup(b)
	benchUnary(b, cc)
}

func benchUnary(b *testing.B, cc *grpc.ClientConn) {
	tc := testgrpc.NewTestServiceClient(cc)
	ctx := context.Background()
	req := &testgrpc.SimpleRequest{ResponseSize: 64, Payload: payload(64)}
	if _, err := tc.UnaryCall(ctx, req); err != nil { // connect first
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tc.UnaryCall(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
