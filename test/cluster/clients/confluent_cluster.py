"""confluent-kafka-python against a Strom cluster, bootstrapped from one
broker: creates a topic with 3 partitions (AdminClient), produces COUNT
records with acks=all, reads them back in a consumer group. One JSON line.
Usage: python3 confluent_cluster.py <broker> <topic>"""

import json
import os
import signal
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

COUNT = 60


def finish(ok, **fields):
    sys.stdout.write(json.dumps(dict(client="confluent-kafka-python", ok=ok, **fields)) + "\n")
    sys.stdout.flush()
    os._exit(0 if ok else 1)


def main(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker})
    for t, f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).items():
        f.result(30)
    leaders = set()
    for _ in range(100):
        md = admin.list_topics(topic, timeout=10)
        tm = md.topics.get(topic)
        if tm is not None and tm.error is None and len(tm.partitions) == 3 and all(p.leader >= 0 for p in tm.partitions.values()):
            leaders = sorted({p.leader for p in tm.partitions.values()})
            break
    errors = []
    p = Producer({"bootstrap.servers": broker, "acks": "all", "enable.idempotence": True})
    for i in range(COUNT):
        p.produce(topic, value=("python-%d" % i).encode(), partition=i % 3,
                  on_delivery=lambda err, msg: err and errors.append(str(err)))
    left = p.flush(30)
    if errors or left:
        finish(False, error="produce: %s, %d undelivered" % (errors[:3], left))
    c = Consumer({"bootstrap.servers": broker, "group.id": topic + "-group", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = set()
    while len(seen) < COUNT:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            continue
        seen.add(m.value().decode())
    c.commit(asynchronous=False)
    c.close()
    finish(len(seen) == COUNT, leaders=leaders, produced=COUNT, consumed=len(seen))


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, lambda s, f: finish(False, error="timed out"))
    signal.alarm(90)
    try:
        main(sys.argv[1], sys.argv[2])
    except Exception as e:  # the summary line says what failed
        finish(False, error=repr(e))
