// Package pushv1alpha1 is the generated Go code of the push protocol
// (push.proto): the gRPC stream on which the control plane sends each
// remote proxy its part of the IR, and the proxy ACKs or NACKs it.
// Regenerate with api/push/generate.sh; do not edit push.pb.go or
// push_grpc.pb.go.
package pushv1alpha1
