// Package handler turns Kafka requests (decoded kmsg structs) into calls on
// the cluster state and builds the responses. One file per API key
// (NN_api_name.go), each opening with what it does and its version notes,
// and registering its version range next to its handler so that ApiVersions
// can never disagree with what is served. What several APIs share has a
// file without a number (broker_configs.go: the dynamic broker configs of
// AlterConfigs and IncrementalAlterConfigs).
//
// This is the only package that knows Kafka error codes: errors.go maps the
// domain errors of cluster, partition, log, record and metadata to kerr
// codes. A handler returns a Go error only when the connection must close;
// everything else is an error code in the response.
//
// Handlers run on the connection's reader goroutine in request order, so an
// append happens in the order the client sent it; anything that waits (an
// acks=all fsync, a fetch long poll) runs in Reply.Finish on the writer.
package handler
