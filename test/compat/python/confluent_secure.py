"""confluent-kafka-python over a secured listener: produce COMPAT_COUNT
records and read them back with an assign()ed consumer. The security
settings (security.protocol, sasl.*, ssl.*) come as a JSON object in
argv[3], librdkafka's names as they are.

Usage: confluent_secure.py <broker> <topic> <security-json>"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

import common

broker, topic = common.broker_and_topic("python-secure")
security = json.loads(sys.argv[3])
common.SUMMARY["client"] = "confluent-kafka-python"

try:
    p = Producer(dict(security, **{"bootstrap.servers": broker}))
    errors = []
    for i in range(common.COUNT):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0,
                  on_delivery=lambda err, msg: err and errors.append(str(err)))
    left = p.flush(common.TIMEOUT_S)
    if left or errors:
        common.finish(False, error="produce: %d left, errors %s" % (left, errors[:3]))
    c = Consumer(dict(security, **{"bootstrap.servers": broker, "group.id": "secure", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    deadline = time.monotonic() + common.TIMEOUT_S
    while got < common.COUNT and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            common.finish(False, error="consume: %s" % m.error())
        if m.value() != b"v%d" % got:
            common.finish(False, error="record %d is %r" % (got, m.value()))
        got += 1
    c.close()
    common.finish(got == common.COUNT, produced=common.COUNT, consumed=got)
except Exception as e:  # the summary says what broke
    common.finish(False, error=repr(e))
