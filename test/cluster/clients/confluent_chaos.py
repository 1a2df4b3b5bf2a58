"""librdkafka (confluent-kafka-python) producers for the kill test: N
idempotent acks=all producers, each writing "py<k>-<seq>" keyed "py<k>"
(so one producer's records stay in one partition, in order), at most RATE
records a second each (0: no limit), until its standard input closes; then each flushes and the process exits. Every
acknowledged record is printed as "ack <value>" as its delivery report
arrives; failures as "fail <value> <error>".
Usage: python3 confluent_chaos.py <bootstrap> <topic> <producers> <rate>"""

import sys
import threading
import time

from confluent_kafka import Producer

out_lock = threading.Lock()


def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main(bootstrap, topic, n, rate):
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    def report(err, msg):
        v = msg.value().decode()
        if err is None:
            say("ack " + v)
        else:
            say("fail %s %s" % (v, err))

    producers = [Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "topic.metadata.refresh.interval.ms": 1000,
                           "queue.buffering.max.messages": 2000})
                 for _ in range(n)]
    seq = [0] * n
    start = time.monotonic()
    rounds = 0
    while not stop.is_set():
        if rate > 0:
            wait = start + rounds / rate - time.monotonic()
            if wait > 0:
                for p in producers:
                    p.poll(wait / n)
        rounds += 1
        for k, p in enumerate(producers):
            v = "py%d-%07d" % (k, seq[k])
            try:
                p.produce(topic, key=("py%d" % k).encode(), value=v.encode(), on_delivery=report)
                seq[k] += 1
            except BufferError:
                p.poll(0.05)
            p.poll(0)
    left = sum(p.flush(120) for p in producers)
    say("done %d" % left)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
