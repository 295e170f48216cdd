// Package grpctest runs the causeway binary as a standalone gateway in front
// of real grpc-go servers and drives it with real grpc-go clients: the
// end-to-end check of GRPCRoute translation, HTTP/2 proxying (h2c both
// ways), trailers, deadlines and the gRPC statuses the proxy answers
// itself. It holds only tests and benchmarks.
package grpctest
