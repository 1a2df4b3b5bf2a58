"""confluent-kafka-python's AdminClient on the configs of issue 15: a topic
created with message.format.version (accepted and ignored, as Kafka 3.x
does), a dynamic broker config set on this broker and read back with its
source, and a static one refused by name. Prints the one-line JSON summary;
ok is false with the first mismatch as error."""

from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from common import Mismatch, broker_and_topic, expect_equal, finish, remaining

broker, topic = broker_and_topic("admin")
admin = AdminClient({"bootstrap.servers": broker})


def describe(resource):
    return admin.describe_configs([resource])[resource].result(timeout=remaining())


try:
    fs = admin.create_topics([NewTopic(topic, 1, 1, config={"message.format.version": "2.8"})])
    fs[topic].result(timeout=remaining())
    mfv = describe(ConfigResource("topic", topic))["message.format.version"]
    expect_equal("message.format.version", (mfv.value, mfv.source), ("2.8", ConfigSource.DYNAMIC_TOPIC_CONFIG.value))

    node = str(admin.list_topics(timeout=remaining()).controller_id)
    res = ConfigResource("broker", node, set_config={"log.retention.ms": "7200000"})
    admin.alter_configs([res])[res].result(timeout=remaining())
    ret = describe(ConfigResource("broker", node))["log.retention.ms"]
    expect_equal("broker log.retention.ms", (ret.value, ret.source, ret.is_read_only),
                 ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value, False))
    ret = describe(ConfigResource("topic", topic))["retention.ms"]
    expect_equal("topic retention.ms", (ret.value, ret.source), ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value))

    static = ConfigResource("broker", node, set_config={"num.partitions": "3"})
    refused = None
    try:
        admin.alter_configs([static])[static].result(timeout=remaining())
    except Exception as e:  # KafkaException wrapping the broker's error
        refused = str(e)
    if refused is None or "Cannot update these configs dynamically: [num.partitions]" not in refused:
        raise Mismatch("num.partitions: got %r, want it refused by name" % refused)
    finish(True, refused=refused)
except Exception as e:
    finish(False, error="%s: %s" % (type(e).__name__, e))
