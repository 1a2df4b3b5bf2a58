// Package record owns Kafka's on-disk and on-wire data formats: the v2
// RecordBatch that the partition log stores, the v0/v1 message sets of old
// clients, their checksums, the compression codecs, and the conversions
// between them. It is the bottom of the storage stack and imports no
// protocol package: Kafka error codes are the handlers' business.
//
// The log stores v2 batches byte for byte as producers sent them, after the
// partition rewrites BaseOffset (and PartitionLeaderEpoch, and for
// LogAppendTime topics MaxTimestamp): those rewrites are done in place by
// SetBaseOffset, SetPartitionLeaderEpoch and SetLogAppendTime, so a batch is
// never re-encoded on the produce path.
//
// # RecordBatch v2
//
// All integers are big-endian. The first 12 bytes (BaseOffset, Length) are
// the "log overhead" shared with v0/v1 messages; Magic is at byte 16 in
// every format, which is how PeekMagic tells them apart.
//
//	+--------+------+-----------------------+-----------------------------------------+
//	| offset | size | field                 | notes                                   |
//	+--------+------+-----------------------+-----------------------------------------+
//	|      0 |    8 | BaseOffset            | offset of the first record              |
//	|      8 |    4 | Length                | bytes after this field; >= 49           |
//	|     12 |    4 | PartitionLeaderEpoch  | set by the leader; outside the CRC      |
//	|     16 |    1 | Magic                 | 2                                       |
//	|     17 |    4 | CRC                   | CRC-32C of bytes 21 .. end              |
//	|     21 |    2 | Attributes            | see below                               |
//	|     23 |    4 | LastOffsetDelta       | last offset - BaseOffset                |
//	|     27 |    8 | BaseTimestamp         | timestamp of the first record           |
//	|     35 |    8 | MaxTimestamp          | largest timestamp, or the append time   |
//	|     43 |    8 | ProducerID            | -1 without idempotence                  |
//	|     51 |    2 | ProducerEpoch         | -1 without idempotence                  |
//	|     53 |    4 | BaseSequence          | -1 without idempotence                  |
//	|     57 |    4 | NumRecords            | records that follow                     |
//	|     61 |    - | records               | compressed as a whole if codec != none  |
//	+--------+------+-----------------------+-----------------------------------------+
//
//	Attributes (int16):
//	+------+----------------------------------------------------------+
//	| bits | meaning                                                  |
//	+------+----------------------------------------------------------+
//	|  0-2 | codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd           |
//	|    3 | timestamp type: 0 CreateTime, 1 LogAppendTime            |
//	|    4 | transactional                                            |
//	|    5 | control batch (transaction markers)                      |
//	|    6 | delete horizon set (compaction; BaseTimestamp holds it)  |
//	| 7-15 | unused                                                   |
//	+------+----------------------------------------------------------+
//
// # Record v2
//
// Varints are zigzag-encoded (Protocol Buffers' sint32/sint64); a length of
// -1 means null.
//
//	+-------------------+---------+---------------------------------------------+
//	| field             | type    | notes                                       |
//	+-------------------+---------+---------------------------------------------+
//	| Length            | varint  | bytes of the record after this field        |
//	| Attributes        | int8    | unused, 0                                   |
//	| TimestampDelta    | varlong | timestamp - BaseTimestamp                   |
//	| OffsetDelta       | varint  | offset - BaseOffset                         |
//	| KeyLength         | varint  | -1: null key                                |
//	| Key               | bytes   |                                             |
//	| ValueLength       | varint  | -1: null value (tombstone)                  |
//	| Value             | bytes   |                                             |
//	| HeaderCount       | varint  | >= 0                                        |
//	|   HeaderKeyLength | varint  | >= 0 (keys are never null)                  |
//	|   HeaderKey       | bytes   | UTF-8                                       |
//	|   HeaderValueLen  | varint  | -1: null                                    |
//	|   HeaderValue     | bytes   |                                             |
//	+-------------------+---------+---------------------------------------------+
//
// # Message v0 and v1 (message sets)
//
// A message set is a concatenation of entries, each a message with the log
// overhead in front. There is no set-level header.
//
//	+--------+------+-------------+---------------------------------------------+
//	| offset | size | field       | notes                                       |
//	+--------+------+-------------+---------------------------------------------+
//	|      0 |    8 | Offset      | inner messages of a v1 wrapper: relative    |
//	|      8 |    4 | MessageSize | bytes after this field; >= 14 (v0), 22 (v1) |
//	|     12 |    4 | CRC         | CRC-32 (IEEE) of bytes 16 .. end            |
//	|     16 |    1 | Magic       | 0 or 1                                      |
//	|     17 |    1 | Attributes  | bits 0-2 codec (none, gzip, snappy, lz4),   |
//	|        |      |             | bit 3 LogAppendTime (v1)                    |
//	|     18 |    8 | Timestamp   | v1 only                                     |
//	|  18/26 |    4 | KeyLength   | -1: null                                    |
//	|        |    - | Key         |                                             |
//	|        |    4 | ValueLength | -1: null                                    |
//	|        |    - | Value       | a wrapper's value: the compressed inner set |
//	+--------+------+-------------+---------------------------------------------+
//
// A compressed message ("wrapper") holds a whole message set, compressed, as
// its value. In v1 the inner offsets are relative (0..n-1) and the wrapper's
// Offset is the absolute offset of the last inner message; in v0 inner
// offsets are absolute.
//
// # Invariants
//
//   - A batch's Size() is 12+Length; ValidateBatch and CheckCRC accept b only
//     if len(b) == Size().
//   - A batch that passed ValidateBatch has NumRecords = LastOffsetDelta+1
//     >= 1 records with offset deltas 0..n-1 that decode exactly to its end;
//     Records additionally accepts compacted batches (increasing deltas with
//     gaps, at most LastOffsetDelta, or no records).
//   - AppendBatch output passes ValidateBatch when its offset deltas are
//     0..n-1, and Records always.
//   - Decoders never panic and never allocate on the word of a length or
//     count field: a length is checked against the bytes that remain before
//     it is used, record and message counts only cap a preallocation by what
//     the bytes can hold, and decompression stops at the caller's limit
//     (maxDecompressed) whatever size the payload claims.
//   - Decoded keys, values and header values alias the input (or a buffer
//     decompressed for the call); nothing of the caller's is retained by
//     the package.
//   - All functions are safe for concurrent use; the codecs keep pooled
//     encoders and decoders.
//   - ValidateBatch decompresses into scratch buffers pooled by power-of-two
//     size class (scratch.go, 4 KiB to 8 MiB) and gives them back before it
//     returns: a buffer is never handed out while in use, and none leaves
//     the package. Recompress and DownConvert do the same with a pooled
//     recordScratch (the decompressed body, the decoded records, the inner
//     message set), given back before they return: they allocate their
//     result and nothing else in proportion to the batches (issue 22).
//     Functions whose decoded records the caller keeps (Records,
//     ConvertMessageSet) decompress into fresh buffers. A pooled buffer is
//     sliced to the size the payload was checked for, so it lifts no cap.
//
// # Errors
//
// Every error wraps exactly one sentinel, with context:
//
//	ErrShortBuffer       b ends before the header or batch it starts (a torn
//	                     tail in the log; for a produce request, corrupt)
//	ErrCorrupt           CRC mismatch; length field inconsistent with the
//	                     bytes; compressed payload that does not decompress
//	ErrUnsupportedMagic  magic not handled by the function
//	ErrInvalidRecord     the CRC holds but the content is invalid: records
//	                     that do not decode, bad counts or offset deltas,
//	                     empty or nested-compressed wrappers
//	ErrTooLarge          decompressed output over the caller's limit
//	ErrUnsupportedCodec  codec 5-7, or zstd where v0/v1 cannot carry it
//
// A panic from this package is a bug in it or a misuse of the in-place
// setters (a buffer shorter than the batch), never a consequence of input.
package record
