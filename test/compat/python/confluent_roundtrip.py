#!/usr/bin/python3
"""confluent-kafka-python round trip, without a consumer group.

Creates a topic, then for each compression type (none, gzip, snappy, lz4,
zstd) produces keyed records with headers and explicit timestamps, checking
every delivery report. Reads everything back with a Consumer that is
assign()ed to partition 0 from the beginning, and compares each field. Also
checks the watermarks and offsets looked up by timestamp.

Run it with Debian's interpreter (/usr/bin/python3): python3-confluent-kafka
is installed for that one only.

    /usr/bin/python3 confluent_roundtrip.py <broker> <topic>

Environment fallbacks: KAFKA_BROKER, KAFKA_TOPIC, COMPAT_COUNT (records per
codec), COMPAT_TIMEOUT_MS (hard deadline). Prints one JSON summary line on
stdout and exits non-zero on any failure.
"""

import signal
import sys
import time

from common import (COUNT, STARTED, SUMMARY, TIMEOUT_S, Mismatch, broker_and_topic,
                    expect_equal, finish, on_deadline, remaining)

CLIENT = "confluent-kafka-python"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BROKER, TOPIC = broker_and_topic("compat-python")
SUMMARY.update(client=CLIENT, broker=BROKER, topic=TOPIC)


def records_for(codec, first, base_ts):
    """The records of one codec's batch. Values repeat enough to compress, so
    librdkafka really uses the codec (it sends a batch uncompressed when
    compressing would not make it smaller)."""
    out = []
    for n in range(first, first + COUNT):
        out.append({
            "offset": n,
            "key": "key-%d" % n,
            "value": "value-%d-%s-python-ü€✓ %s" % (n, codec, "payload " * 8),
            "timestamp": base_ts + n * 1000,
            # A repeated key and a null value must both survive.
            "headers": [["h-index", str(n)], ["h-codec", codec], ["h-dup", "first"],
                        ["h-dup", "second"], ["h-null", None]],
            "codec": codec,
        })
    return out


def main():
    # Imported here so that a missing module still ends in a summary line.
    from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer,
                                 KafkaError, Producer, TopicPartition)
    from confluent_kafka.admin import AdminClient, NewTopic

    common = {"bootstrap.servers": BROKER, "socket.timeout.ms": 10000}

    admin = AdminClient(dict(common))
    futures = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)],
                                  operation_timeout=10, request_timeout=15)
    futures[TOPIC].result(timeout=remaining())

    base_ts = (int(time.time()) - 3600) * 1000
    want = []
    for codec in CODECS:
        batch = records_for(codec, len(want), base_ts)
        reports = []

        def on_delivery(err, msg, reports=reports):
            reports.append((err, msg))

        producer = Producer(dict(common, **{
            "compression.type": codec,
            "acks": "all",
            "linger.ms": 20,
        }))
        for r in batch:
            producer.produce(TOPIC, value=r["value"].encode(), key=r["key"].encode(), partition=0,
                             timestamp=r["timestamp"],
                             headers=[(k, None if v is None else v.encode()) for k, v in r["headers"]],
                             on_delivery=on_delivery)
        left = producer.flush(remaining())
        expect_equal("%s: messages not delivered after flush" % codec, left, 0)
        expect_equal("%s: delivery reports" % codec, len(reports), len(batch))
        for (err, msg), r in zip(reports, batch):
            if err is not None:
                raise Mismatch("%s: delivery of record %d failed: %s" % (codec, r["offset"], err))
            expect_equal("%s: delivery report of record %d (topic, partition, offset)" % (codec, r["offset"]),
                         (msg.topic(), msg.partition(), msg.offset()), (TOPIC, 0, r["offset"]))
            expect_equal("%s: delivery report timestamp of record %d" % (codec, r["offset"]),
                         msg.timestamp(), (TIMESTAMP_CREATE_TIME, r["timestamp"]))
        want.extend(batch)
    total = len(want)

    # librdkafka needs a group.id to build a Consumer even if it never joins
    # a group; with assign() it only looks up the coordinator and never joins.
    consumer = Consumer(dict(common, **{
        "group.id": "compat-unused-" + TOPIC,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }))
    try:
        expect_equal("watermarks", consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=remaining()),
                     (0, total))
        probes = [(base_ts - 5000, 0), (base_ts, 0), (base_ts + 4 * 1000 - 1, 4),
                  (base_ts + (total - 1) * 1000, total - 1), (base_ts + total * 1000, -1)]
        for ts, off in probes:
            got = consumer.offsets_for_times([TopicPartition(TOPIC, 0, ts)], timeout=remaining())
            expect_equal("offsets_for_times(%d ms after base)" % (ts - base_ts),
                         [(tp.partition, tp.offset) for tp in got], [(0, off)])

        consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
        got = []
        while True:
            if time.monotonic() - STARTED > TIMEOUT_S:
                raise Mismatch("consumed %d of %d records before the deadline" % (len(got), total))
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if len(got) >= total:
                        break
                    continue
                raise Mismatch("consume error: %s" % msg.error())
            got.append(msg)
    finally:
        consumer.close()

    expect_equal("consumed record count", len(got), total)
    for msg, r in zip(got, want):
        what = "record %d" % r["offset"]
        expect_equal(what + " topic/partition/offset", (msg.topic(), msg.partition(), msg.offset()),
                     (TOPIC, 0, r["offset"]))
        expect_equal(what + " key", msg.key(), r["key"].encode())
        expect_equal(what + " value", msg.value(), r["value"].encode())
        expect_equal(what + " timestamp", msg.timestamp(), (TIMESTAMP_CREATE_TIME, r["timestamp"]))
        expect_equal(what + " headers", msg.headers(),
                     [(k, None if v is None else v.encode()) for k, v in r["headers"]])

    finish(True, produced=total, consumed=len(got), codecs=CODECS, records=want)


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_deadline)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        main()
    except Exception as e:  # every failure becomes a summary line
        import traceback
        traceback.print_exc(file=sys.stderr)
        finish(False, error="%s: %s" % (type(e).__name__, e))
