// Package server is Strom's Kafka listener: the only package that touches
// client sockets. It accepts connections, reads and frames requests, parses
// their headers and bodies (kmsg), passes them in order to a Handler, and
// writes the replies back in request order. It knows nothing about topics,
// groups or storage; the handler does, and it never sees a socket.
//
// # Goroutines, and who stops them
//
//	Serve (caller's goroutine)   accept loop; returns when Shutdown closes the listener
//	sweepIdle (one per Server)   closes idle connections; started by the first Serve,
//	                             stops when Shutdown starts
//	conn.serve (per connection)  the reader: read frame (charging it to the request
//	                             budget), ParseRequest, Handler.Handle, give the budget
//	                             back, queue the Reply. It owns the connection: when it stops
//	                             it closes the queue, waits for the writer, closes the
//	                             socket and unregisters the connection
//	conn.writeLoop (per conn)    the writer: for each queued Reply in order, call
//	                             Finish, encode, write; flush when the queue is empty
//
// Fetch responses whose partitions carry 16 KiB of records or more are not
// copied into an encode buffer: kmsg encodes the response with a marker in
// place of each such partition's records, the encoding is cut at the
// markers, and the pieces and the records (in the buffers the log read them
// into) go out in one writev (splice.go). The bytes are kmsg's encoding
// exactly (TestSpliceMatchesPlainEncoding, every version); only the records'
// length prefixes are written here. Before, the copy and the fresh 8 MiB
// encode buffer per fetch were 17% of the broker's CPU in a catch-up read.
//
// Records a handler gives as a file range (RecordsFromFile: the fetch
// handler does for v4+ read_uncommitted fetches of batches this process
// has checked) are not read into memory at all: on a plain TCP connection
// the writer sends them with sendfile(2) at their offset, between the
// writev of the encoding's pieces (sendfile.go); on TLS, or any connection
// that is not a *net.TCPConn, it reads them into a pooled buffer and
// writes that. Every file range is released exactly once: after its write,
// when its response is dropped (connection failed, NoResponse), or by the
// handler when it replaces it (a long poll's read again). A file cut below
// the range since the read (a follower's truncation) fails the write and
// closes the connection: a frame whose size is already sent cannot be
// completed. Before, the read from the page cache into memory (pread) was
// 45% of the broker's CPU in a raw catch-up read and the writev 48%.
//
// Handle runs on the reader, so the side effects of a connection's requests
// happen in the order they arrived. Finish runs on the writer, in request
// order, after every earlier reply of the connection was written; the queue
// between them holds at most Config.MaxInFlight replies, and a full queue
// stops the reader (back-pressure). Finish is called exactly once for every
// reply that has one: after the connection failed it is still called, with a
// cancelled context, and its response is dropped.
//
// The context given to Handle and Finish is cancelled when the connection
// closes (client gone, write error, idle timeout, a panic) or when
// Shutdown's context expires; it is not cancelled when a graceful Shutdown
// starts, so in-flight work completes normally.
//
// A connection ends in one of two ways:
//
//   - Gracefully: the reader stops (bad frame, Handle error or panic,
//     Shutdown), the writer writes every reply already queued and flushes,
//     then the socket is closed. Meanwhile the reader discards what the
//     client still sends, only to notice it leaving: then the connection is
//     aborted, so a Finish waiting for it (a JoinGroup's rebalance) ends.
//   - Abruptly (abort): the socket is closed at once and the context
//     cancelled (client EOF or read error, write error, Finish panic, idle
//     timeout, request read timeout, Shutdown deadline); the writer drains
//     the queue without writing. Kafka clients never half-close, and work
//     for a client that left is wasted.
//
// Shutdown sets a read deadline in the past on every connection (and ends
// their waits for the request budget), so readers stop at the next frame
// boundary: a request whose frame was fully read is
// handled and answered, one not yet read is not. A panic in Handle or Finish
// is recovered, logged at error level with its stack, and closes only that
// connection.
//
// # Security
//
// ServeListener serves one listener of Kafka's listener.security.protocol.map:
// with Listener.TLS the accepted socket is wrapped in crypto/tls and the
// handshake runs first on the connection's goroutine (bounded by
// HandshakeTimeout; a failure closes it, is counted and logged on one line
// at most every 10 s); with Listener.SASL only ApiVersions, SaslHandshake
// and SaslAuthenticate are handed to the handler until it calls
// Session.Authenticated, and any other request closes the connection
// unanswered. After SaslHandshake v0 (Session.ExpectRawToken) the next
// frames are bare SASL tokens: each is given to Handle as a SaslAuthenticate
// v0 request with Request.Raw set, and its answer is written as a size and
// the token only. Reply.CloseAfter closes the connection once that reply
// is written (a failed authentication). Every request carries the
// connection's Session (listener, principal) in ConnInfo.
//
// # Framing
//
// Every request and response is a frame: a big-endian int32 size, then size
// bytes. Request header (v1, or v2 for flexible versions):
//
//	+------+--------------------------+-----------------------------------------+
//	| size | field                    | notes                                   |
//	+------+--------------------------+-----------------------------------------+
//	| 4    | size          int32      | 0 <= size <= MaxRequestBytes            |
//	| 2    | api key       int16      | unknown key: close                      |
//	| 2    | api version   int16      | outside the handler's range: close,     |
//	|      |                          | except ApiVersions above our max        |
//	| 4    | correlation id int32     | echoed in the response                  |
//	| 2+n  | client id     int16 len  | -1 = null; absent for ControlledShutdown|
//	|      |               + bytes    | v0 (header v0); never compact           |
//	| 1+   | tagged fields uvarint    | header v2 only (flexible versions)      |
//	|      |               count, ... |                                         |
//	| ...  | body                     | kmsg layout of (key, version)           |
//	+------+--------------------------+-----------------------------------------+
//
// Response header (v0, or v1 for flexible versions except ApiVersions):
//
//	+------+--------------------------+-----------------------------------------+
//	| 4    | size          int32      | bytes that follow                       |
//	| 4    | correlation id int32     | from the request                        |
//	| 1    | tagged fields (0)        | header v1 only; ApiVersions never has it|
//	| ...  | body                     | resp.AppendTo at the request's version  |
//	+------+--------------------------+-----------------------------------------+
//
// An ApiVersions request at a version above our maximum is answered, not
// refused: UNSUPPORTED_VERSION (35) in the v0 body layout with a v0 header,
// listing the ApiVersions range we serve (only it, as Kafka: the client
// retries at that version and gets every range and the features), and the
// connection stays open (KIP-511;
// Azure Event Hubs reset the connection instead and broke clients).
//
// # Limits
//
//   - MaxRequestBytes (default 100 MiB, socket.request.max.bytes): a size
//     prefix above it, or negative, closes the connection before anything is
//     allocated; below it, the frame buffer grows with the bytes that arrive
//     (starting at what has arrived, at least 1 KiB, and at most doubling once
//     more bytes are there), so a client that claims a large frame and sends
//     little costs little: a buffer is never charged more than twice what
//     its client sent, plus 1 KiB. Its last growth, to the whole frame, is
//     a power-of-two buffer from internal/bufpool (so at most twice the
//     frame); a Produce frame goes back there when Handle returns.
//   - MaxQueuedRequestBytes (default 100 MiB, queued.max.request.bytes; raised
//     to MaxRequestBytes if below): the request budget, shared by all
//     connections. A reader charges each growth of its frame buffer before
//     allocating it and gives the whole charge back when Handle returns.
//     When the budget is spent, readers wait without reading their sockets,
//     so TCP holds the clients back and the heap does not grow. So that
//     half-read frames waiting for each other's budget cannot wedge, one
//     frame at a time may read past the limit (the first waiter, when none
//     is): request buffers total at most MaxQueuedRequestBytes +
//     MaxRequestBytes, and some frame can always finish. Waiters are served
//     in order. The budget is not held until the reply is written: by then
//     the server no longer needs the frame (a produce's records were
//     appended in Handle), and replies that wait for other requests (a fetch
//     long poll for a produce, a JoinGroup for the other members) would hold
//     the budget those requests need. Handlers must therefore copy the
//     request bytes they keep past Handle (Request.Msg). A frame takes a
//     buffer kept in bufpool only once it is charged in full, so kept
//     buffers are never held outside the budget by a frame being read;
//     idle in bufpool they are at most what frames held at once, until
//     two garbage collections free them. Decoding may take a
//     small multiple of the frame (see below), replies queued for the
//     writer are bounded per connection by MaxInFlight, not by the budget.
//   - RequestReadTimeout (default 30s; the broker's
//     socket.request.read.timeout.ms, Strom's own): once a frame's first
//     byte arrived, the whole frame must arrive within it, or the
//     connection is closed. Time spent waiting for the budget does not
//     count. Bytes that trickle in keep a connection from looking idle, so
//     without this a client sending a byte now and then (slow loris) would
//     hold its connection, and its frame's share of the budget, forever.
//     Waiting for a frame to start is idleness, left to IdleTimeout. The
//     deadline is put on the socket only when a frame needs another read,
//     so a frame that arrived whole costs no syscall for it.
//   - MaxInFlight (default 100): replies queued per connection before the
//     reader stops reading.
//   - MaxConnections, MaxConnectionsPerIP (default unlimited): an excess
//     connection is closed as soon as it is accepted; the refusal is logged at
//     warn level at most once every 10 seconds.
//   - IdleTimeout (default 10 min): a connection that has moved no bytes for
//     that long, while no Finish is running and its reader is not waiting
//     for the budget, is closed.
//
// Decoding is kmsg's, from the patched v1.15.1 in third_party/kmsg (see its
// PATCHES.md). kmsg v1.15.0 kept looping over a forged tagged-field count
// after its input ended (a 44-byte frame cost a minute of CPU; found by
// FuzzRequestFrame, fixed upstream in v1.15.1) and allocated arrays at their
// claimed length before reading an element. v1.15.1 bounds a count by the
// bytes left, but still allocates up to 32 times the frame for a Produce
// (3.2 GiB for 100 MiB); the patch grows arrays as elements are parsed, so a
// decode stops at the first failed read and allocates in proportion to what
// it parsed (TestTaggedFieldCountBeyondFrame,
// TestArrayCountBeyondParsedData).
package server
