"""What the confluent-kafka-python compat scripts share: arguments from the
command line or the environment, the hard deadline, the one-line JSON
summary, and comparisons that raise Mismatch."""

import json
import os
import sys
import time


def env_int(name, default):
    try:
        n = int(os.environ.get(name, ""))
        return n if n > 0 else default
    except ValueError:
        return default


COUNT = env_int("COMPAT_COUNT", 20)
TIMEOUT_S = env_int("COMPAT_TIMEOUT_MS", 60000) / 1000.0
STARTED = time.monotonic()

# Fields every summary line carries; each script sets its own.
SUMMARY = {}


def broker_and_topic(default_prefix):
    broker = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KAFKA_BROKER", "127.0.0.1:9092")
    topic = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("KAFKA_TOPIC", "%s-%d" % (default_prefix, time.time()))
    return broker, topic


def finish(ok, **fields):
    summary = dict(SUMMARY, ok=ok, elapsed_ms=int((time.monotonic() - STARTED) * 1000))
    summary.update(fields)
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    # os._exit: librdkafka threads must not keep a failed run alive.
    os._exit(0 if ok else 1)


class Mismatch(Exception):
    pass


def expect_equal(what, got, want):
    if got != want:
        raise Mismatch("%s: got %r, want %r" % (what, got, want))


def remaining():
    return max(0.1, TIMEOUT_S - (time.monotonic() - STARTED))


def on_deadline(signum, frame):
    finish(False, error="timed out after %d ms" % (TIMEOUT_S * 1000))
