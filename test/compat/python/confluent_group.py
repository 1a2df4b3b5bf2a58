#!/usr/bin/python3
"""confluent-kafka-python consumers in one group (librdkafka's classic group
protocol: JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch,
LeaveGroup, with its range assignor).

Two phases, run as two processes so that the broker can be restarted in
between:

    confluent_group.py <broker> <topic> split   # two consumers share the topic
    confluent_group.py <broker> <topic> resume  # one consumer resumes

split: creates the topic with 4 partitions, starts two consumers of the
group, waits until each owns two partitions, produces COUNT records to
every partition, and polls both until every record has arrived. Each
partition's records must reach exactly one consumer, each record once. Both
consumers commit synchronously and close (leaving the group).

resume: produces COUNT more records to every partition and starts one
consumer of the group. It must start at the committed offsets: it receives
exactly the new records, none of the earlier ones. It commits and closes.

Run it with Debian's interpreter (/usr/bin/python3). Environment fallbacks:
KAFKA_BROKER, KAFKA_TOPIC, COMPAT_COUNT, COMPAT_TIMEOUT_MS. Prints one JSON
summary line on stdout and exits non-zero on any failure.
"""

import signal
import sys
import time

from common import (COUNT, STARTED, SUMMARY, TIMEOUT_S, Mismatch, broker_and_topic,
                    expect_equal, finish, on_deadline, remaining)

CLIENT = "confluent-kafka-python-group"
PARTITIONS = 4
BROKER, TOPIC = broker_and_topic("compat-python-group")
PHASE = sys.argv[3] if len(sys.argv) > 3 else "split"
GROUP = "compat-python-group-" + TOPIC
SUMMARY.update(client=CLIENT, broker=BROKER, topic=TOPIC, phase=PHASE, group=GROUP)


def produce(Producer, common, label):
    """COUNT records to each partition; returns their values."""
    producer = Producer(dict(common, **{"acks": "all", "linger.ms": 5}))
    sent = []
    errors = []
    for p in range(PARTITIONS):
        for i in range(COUNT):
            v = "%s-p%d-%d" % (label, p, i)
            sent.append(v)
            producer.produce(TOPIC, value=v.encode(), partition=p,
                             on_delivery=lambda err, msg: err and errors.append(err))
    expect_equal("messages not delivered after flush", producer.flush(remaining()), 0)
    expect_equal("delivery errors", errors, [])
    return sent


def new_consumer(Consumer, common, name):
    return Consumer(dict(common, **{
        "group.id": GROUP,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    }))


def poll_until(consumers, want, what):
    """Polls the consumers in turn until want records have arrived; returns
    {consumer index: [messages]}."""
    got = {i: [] for i in range(len(consumers))}
    while sum(len(v) for v in got.values()) < want:
        if time.monotonic() - STARTED > TIMEOUT_S:
            raise Mismatch("%s: %d of %d records before the deadline" % (what, sum(len(v) for v in got.values()), want))
        for i, c in enumerate(consumers):
            msg = c.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                raise Mismatch("%s: consume error: %s" % (what, msg.error()))
            got[i].append(msg)
    return got


def main():
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    common = {"bootstrap.servers": BROKER, "socket.timeout.ms": 10000}

    if PHASE == "split":
        admin = AdminClient(dict(common))
        futures = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)],
                                      operation_timeout=10, request_timeout=15)
        futures[TOPIC].result(timeout=remaining())

        consumers = [new_consumer(Consumer, common, "member-%d" % i) for i in range(2)]
        for c in consumers:
            c.subscribe([TOPIC])
        # Poll both until each owns half of the partitions.
        while True:
            if time.monotonic() - STARTED > TIMEOUT_S:
                raise Mismatch("assignments never settled: %r" % [[tp.partition for tp in c.assignment()] for c in consumers])
            for c in consumers:
                msg = c.poll(0.1)
                if msg is not None and not msg.error():
                    raise Mismatch("a record before any was produced: %r" % msg.value())
            owned = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
            if len(owned[0]) == PARTITIONS // 2 and len(owned[1]) == PARTITIONS // 2:
                break
        expect_equal("partitions owned by the two consumers", sorted(owned[0] + owned[1]), list(range(PARTITIONS)))

        sent = produce(Producer, common, "split")
        got = poll_until(consumers, len(sent), "split")
        for i, c in enumerate(consumers):
            parts = sorted(set(m.partition() for m in got[i]))
            expect_equal("partitions consumer %d received from" % i, parts, owned[i])
            c.commit(asynchronous=False)
        values = sorted(m.value().decode() for msgs in got.values() for m in msgs)
        expect_equal("records received by the group", values, sorted(sent))
        for c in consumers:
            c.close()
        finish(True, produced=len(sent), consumed=len(values), owned=owned)

    if PHASE == "resume":
        sent = produce(Producer, common, "resume")
        c = new_consumer(Consumer, common, "member-resumed")
        c.subscribe([TOPIC])
        got = poll_until([c], len(sent), "resume")[0]
        # Anything from before the committed offsets would arrive now.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                got.append(msg)
        expect_equal("records the resumed consumer received", sorted(m.value().decode() for m in got), sorted(sent))
        expect_equal("first offset of each partition", sorted(set((m.partition(), min(x.offset() for x in got if x.partition() == m.partition())) for m in got)),
                     [(p, COUNT) for p in range(PARTITIONS)])
        c.commit(asynchronous=False)
        c.close()
        finish(True, produced=len(sent), consumed=len(got))

    raise Mismatch("unknown phase %r (want split or resume)" % PHASE)


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_deadline)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        main()
    except Exception as e:  # every failure becomes a summary line
        import traceback
        traceback.print_exc(file=sys.stderr)
        finish(False, error="%s: %s" % (type(e).__name__, e))
