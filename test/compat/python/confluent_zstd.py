"""Produces COUNT records (the third argument, else COMPAT_COUNT) of 1,000 bytes to partition 0 of the topic
with compression.type=zstd, lingering long enough that they go out as one
batch: librdkafka with Debian's shared libzstd writes frames without a
content size (issue 15 item 9). Prints the one-line JSON summary."""

import sys

from confluent_kafka import Producer

from common import COUNT, TIMEOUT_S, broker_and_topic, finish

broker, topic = broker_and_topic("zstd")
count = int(sys.argv[3]) if len(sys.argv) > 3 else COUNT
errors = []


def report(err, msg):
    if err is not None:
        errors.append(str(err))


p = Producer({
    "bootstrap.servers": broker,
    "compression.type": "zstd",
    "linger.ms": 2000,
    "batch.size": 4000000,
    "batch.num.messages": 1000000,
    "message.max.bytes": 8000000,
    "message.timeout.ms": int(TIMEOUT_S * 1000),
})
for i in range(count):
    value = (("record %07d " % i) * 67)[:1000].encode()  # compressible
    p.produce(topic, value=value, partition=0, on_delivery=report)
left = p.flush(TIMEOUT_S)
finish(left == 0 and not errors, produced=count - left, errors=errors[:3])
