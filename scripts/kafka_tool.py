#!/usr/bin/env python3
"""A small Kafka client for tests, independent of Laminar (confluent-kafka / librdkafka).

  kafka_tool.py BROKERS create TOPIC [PARTITIONS]
  kafka_tool.py BROKERS produce TOPIC [--partition N] [--key K] [--header k=v ...] VALUE ...
  kafka_tool.py BROKERS produce-range TOPIC START END
  kafka_tool.py BROKERS produce-txn TOPIC HOLD VALUE ...
  kafka_tool.py BROKERS produce-avro TOPIC REGISTRY SCHEMA VALUE ...
  kafka_tool.py BROKERS consume-avro TOPIC COUNT REGISTRY [--timeout S]
  kafka_tool.py BROKERS consume TOPIC COUNT [--timeout S] [--read-committed] [--keys] [--headers]
  kafka_tool.py BROKERS committed GROUP TOPIC

`produce-range` writes `{"n": i}` for START <= i < END, keyed by i (so spread over the
partitions). `produce-txn` writes the VALUEs in one transaction, delivered at once but
committed only HOLD seconds later (an open transaction for that long). `produce-avro` registers SCHEMA (Avro JSON) under TOPIC-value at the schema
registry REGISTRY (host:port) and writes each VALUE (JSON) in the Confluent wire format, with
fastavro. `consume-avro` reads COUNT such records, fetching writer schemas by id, and prints
each as JSON with sorted keys. `consume` reads the topic from the beginning and prints COUNT records, one per line, sorted
(partition order is not defined across partitions): `value`, or `key|value` with --keys, with
`|k=v,...` appended for --headers. It fails when fewer than COUNT arrive within the timeout
and says what it got. `committed` prints the group's committed offsets summed over partitions.
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(brokers, args):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
    for future in futures.values():
        future.result(15)


def produce(brokers, args):
    producer = Producer({"bootstrap.servers": brokers})
    headers = [tuple(h.split("=", 1)) for h in args.header]
    for value in args.values:
        extra = {"partition": args.partition} if args.partition is not None else {}
        producer.produce(args.topic, value=value.encode(), key=args.key, headers=headers or None,
                         **extra)
    left = producer.flush(15)
    if left:
        sys.exit(f"{left} record(s) not delivered")


def produce_txn(brokers, args):
    producer = Producer({"bootstrap.servers": brokers,
                         "transactional.id": f"kafka-tool-{time.time_ns()}"})
    producer.init_transactions(15)
    producer.begin_transaction()
    for value in args.values:
        producer.produce(args.topic, value=value.encode())
    if producer.flush(15):
        sys.exit("records not delivered")
    time.sleep(args.hold)
    producer.commit_transaction(15)


def produce_range(brokers, args):
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for i in range(args.start, args.end):
        while True:
            try:
                producer.produce(args.topic, value=f'{{"n": {i}}}'.encode(), key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(30)
    if left:
        sys.exit(f"{left} record(s) not delivered")


def registry_call(registry, method, path, body=None):
    import urllib.request
    request = urllib.request.Request(
        f"http://{registry}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)


def produce_avro(brokers, args):
    import io
    import fastavro
    schema_id = registry_call(args.registry, "POST", f"/subjects/{args.topic}-value/versions",
                              {"schema": args.schema})["id"]
    parsed = fastavro.parse_schema(json.loads(args.schema))
    producer = Producer({"bootstrap.servers": brokers})
    for value in args.values:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, json.loads(value))
        producer.produce(args.topic, value=b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue())
    left = producer.flush(15)
    if left:
        sys.exit(f"{left} record(s) not delivered")


def read_messages(brokers, topic, count, timeout, read_committed=False):
    """Up to COUNT messages from the start of every partition, then any extra that arrive
    within half a second (a duplicate or a stray record), as (message or None) pairs."""
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"kafka-tool-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
    })
    metadata = consumer.list_topics(topic, timeout=15)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages, extra = [], []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        messages.append(message)
    extra_deadline = time.monotonic() + 0.5
    while time.monotonic() < extra_deadline:
        message = consumer.poll(0.1)
        if message is not None and not message.error():
            extra.append(message)
    consumer.close()
    return messages, extra


def report(lines, count, topic):
    for line in sorted(lines):
        print(line)
    if len(lines) != count:
        sys.exit(f"expected {count} record(s) in {topic}, got {len(lines)}")


def consume_avro(brokers, args):
    import io
    import fastavro
    messages, extra = read_messages(brokers, args.topic, args.count, args.timeout)
    schemas = {}
    lines = []
    for message in messages + extra:
        value = message.value()
        if value[:1] != b"\x00":
            sys.exit(f"not in the Confluent wire format: {value!r}")
        schema_id = int.from_bytes(value[1:5], "big")
        if schema_id not in schemas:
            text = registry_call(args.registry, "GET", f"/schemas/ids/{schema_id}")["schema"]
            schemas[schema_id] = fastavro.parse_schema(json.loads(text))
        record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schemas[schema_id])
        lines.append(json.dumps(record, sort_keys=True, default=str))
    report(lines, args.count, args.topic)


def consume(brokers, args):
    messages, extra = read_messages(brokers, args.topic, args.count, args.timeout,
                                    args.read_committed)
    lines = []
    for message in messages:
        line = (message.value() or b"").decode()
        if args.keys:
            line = f"{(message.key() or b'').decode()}|{line}"
        if args.headers:
            pairs = ",".join(f"{k}={(v or b'').decode()}" for k, v in (message.headers() or []))
            line = f"{line}|{pairs}"
        lines.append(line)
    # Anything beyond COUNT would be a duplicate or a stray record.
    lines += ["UNEXPECTED " + (m.value() or b"").decode() for m in extra]
    report(lines, args.count, args.topic)


def committed(brokers, args):
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": args.group})
    metadata = consumer.list_topics(args.topic, timeout=15)
    partitions = [TopicPartition(args.topic, p) for p in metadata.topics[args.topic].partitions]
    offsets = consumer.committed(partitions, timeout=15)
    print(sum(max(tp.offset, 0) for tp in offsets))
    consumer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("brokers")
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("create")
    c.add_argument("topic")
    c.add_argument("partitions", type=int, nargs="?", default=1)
    p = commands.add_parser("produce")
    p.add_argument("topic")
    p.add_argument("--partition", type=int)
    p.add_argument("--key")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("values", nargs="+")
    pr = commands.add_parser("produce-range")
    pr.add_argument("topic")
    pr.add_argument("start", type=int)
    pr.add_argument("end", type=int)
    pt = commands.add_parser("produce-txn")
    pt.add_argument("topic")
    pt.add_argument("hold", type=float)
    pt.add_argument("values", nargs="+")
    pa = commands.add_parser("produce-avro")
    pa.add_argument("topic")
    pa.add_argument("registry")
    pa.add_argument("schema")
    pa.add_argument("values", nargs="+")
    ca = commands.add_parser("consume-avro")
    ca.add_argument("topic")
    ca.add_argument("count", type=int)
    ca.add_argument("registry")
    ca.add_argument("--timeout", type=float, default=15)
    r = commands.add_parser("consume")
    r.add_argument("topic")
    r.add_argument("count", type=int)
    r.add_argument("--timeout", type=float, default=15)
    r.add_argument("--read-committed", action="store_true")
    r.add_argument("--keys", action="store_true")
    r.add_argument("--headers", action="store_true")
    g = commands.add_parser("committed")
    g.add_argument("group")
    g.add_argument("topic")
    args = parser.parse_args()
    {"create": create, "produce": produce, "produce-range": produce_range, "produce-txn": produce_txn,
     "produce-avro": produce_avro, "consume-avro": consume_avro, "consume": consume,
     "committed": committed}[args.command](args.brokers, args)


if __name__ == "__main__":
    main()
