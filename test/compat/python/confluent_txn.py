#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) transactions: a transactional
producer commits and aborts over two partitions, then a
consume-transform-produce step commits its input offsets with
send_offsets_to_transaction.

    confluent_txn.py <broker> <topic>

1. Creates <topic> (2 partitions, the output) and <topic>-in (the input)
   and produces COUNT plain records to the input.
2. init_transactions; a transaction of COUNT records ("commit-i", both
   partitions) is committed, the next ("abort-i") aborted.
3. A consumer of group <topic>-g (read_committed, no auto commit) reads the
   whole input; in one transaction the producer writes "xform-<value>" for
   each record and send_offsets_to_transaction commits the consumer's
   positions; commit_transaction.
4. A plain sentinel record goes to each output partition. A read_committed
   consumer must read exactly the committed and transformed records (no
   "abort-"), a read_uncommitted one every record (the aborted ones too),
   each up to the sentinels. The group's committed offsets must be the
   input's end offsets.

Run it with Debian's interpreter (/usr/bin/python3). Prints one JSON
summary line on stdout and exits non-zero on any failure.
"""

import signal
import sys
import time

from common import (COUNT, STARTED, SUMMARY, TIMEOUT_S, Mismatch, broker_and_topic,
                    expect_equal, finish, on_deadline, remaining)

CLIENT = "confluent-kafka-python-txn"
BROKER, TOPIC = broker_and_topic("compat-python-txn")
INPUT = TOPIC + "-in"
GROUP = TOPIC + "-g"
SENTINEL = "__end__"
SUMMARY.update(client=CLIENT, broker=BROKER, topic=TOPIC, group=GROUP)


def read_to_sentinels(Consumer, common, isolation):
    c = Consumer(dict(common, **{
        "group.id": GROUP + "-reader-" + isolation,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": isolation,
    }))
    c.subscribe([TOPIC])
    values, ends = [], set()
    while len(ends) < 2:
        if time.monotonic() - STARTED > TIMEOUT_S:
            raise Mismatch("%s: sentinels of %r only, %d values" % (isolation, sorted(ends), len(values)))
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise Mismatch("%s consumer: %s" % (isolation, msg.error()))
        v = msg.value().decode()
        if v == SENTINEL:
            ends.add(msg.partition())
        else:
            values.append(v)
    c.close()
    return sorted(values)


def main():
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    common = {"bootstrap.servers": BROKER, "socket.timeout.ms": 10000}
    admin = AdminClient(dict(common))
    futures = admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in (TOPIC, INPUT)],
                                  operation_timeout=10, request_timeout=15)
    for f in futures.values():
        f.result(timeout=remaining())

    plain = Producer(dict(common, **{"acks": "all"}))
    inputs = []
    for i in range(COUNT):
        v = "in-%d" % i
        inputs.append(v)
        plain.produce(INPUT, value=v.encode(), partition=i % 2)
    expect_equal("input not delivered", plain.flush(remaining()), 0)

    tx = Producer(dict(common, **{"transactional.id": TOPIC + "-tx", "transaction.timeout.ms": 60000}))
    tx.init_transactions(remaining())
    for label, commit in (("commit", True), ("abort", False)):
        tx.begin_transaction()
        for i in range(COUNT):
            tx.produce(TOPIC, value=("%s-%d" % (label, i)).encode(), partition=i % 2)
        tx.flush(remaining())
        if commit:
            tx.commit_transaction(remaining())
        else:
            tx.abort_transaction(remaining())

    # Consume-transform-produce with the offsets in the transaction.
    consumer = Consumer(dict(common, **{
        "group.id": GROUP,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }))
    consumer.subscribe([INPUT])
    got = []
    while len(got) < COUNT:
        if time.monotonic() - STARTED > TIMEOUT_S:
            raise Mismatch("input: %d of %d records" % (len(got), COUNT))
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise Mismatch("input consumer: %s" % msg.error())
        got.append(msg.value().decode())
    tx.begin_transaction()
    for v in got:
        tx.produce(TOPIC, value=("xform-" + v).encode())
    tx.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                   consumer.consumer_group_metadata(), remaining())
    tx.commit_transaction(remaining())
    committed = consumer.committed([TopicPartition(INPUT, 0), TopicPartition(INPUT, 1)], timeout=remaining())
    consumer.close()
    expect_equal("committed input offsets", sorted(tp.offset for tp in committed),
                 sorted([(COUNT + 1) // 2, COUNT // 2]))

    for p in range(2):
        plain.produce(TOPIC, value=SENTINEL.encode(), partition=p)
    expect_equal("sentinels not delivered", plain.flush(remaining()), 0)

    want = sorted(["commit-%d" % i for i in range(COUNT)] + ["xform-" + v for v in inputs])
    rc = read_to_sentinels(Consumer, common, "read_committed")
    expect_equal("read_committed output", rc, want)
    ru = read_to_sentinels(Consumer, common, "read_uncommitted")
    expect_equal("read_uncommitted output", ru, sorted(want + ["abort-%d" % i for i in range(COUNT)]))
    finish(True, produced=3 * COUNT, consumed=len(rc))


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_deadline)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        main()
    except Exception as e:  # every failure becomes a summary line
        import traceback
        traceback.print_exc(file=sys.stderr)
        finish(False, error="%s: %s" % (type(e).__name__, e))
