#!/usr/bin/env python3
"""Read a topic as a read_committed consumer would, deciding from the log itself.

  kafka_committed.py BROKERS TOPIC

Prints the value of every record that a read_committed consumer must see (records outside
transactions, and records of committed transactions), one per line, then a summary line on
stderr: how many records were committed, aborted, and still open.

Why this exists: the test broker (tansu) accepts transactions and writes their commit and
abort markers into the log, but hands aborted records to read_committed consumers anyway
(its fetch responses list no aborted transactions). This reader applies the markers on the
client side instead: it reads the raw record batches (kafka-python, a client independent of
librdkafka and of Laminar), keeps each producer's transactional records until that
producer's control record says COMMIT (print them) or ABORT (drop them).
"""

import struct
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord, Fetcher

CONTROL_ABORT, CONTROL_COMMIT = 0, 1


def unpack_with_markers(self, tp, records, key_deserializer, value_deserializer):
    """Every record of every batch, control records included, each tagged in its headers
    with its producer (transactional batches) or its control type (control batches)."""
    batch = records.next_batch()
    while batch is not None:
        producer = str(batch.producer_id) if batch.is_transactional else ""
        for record in batch:
            headers = [("__producer", producer.encode())]
            if batch.is_control_batch:
                _version, kind = struct.unpack(">hh", record.key[:4])
                headers.append(("__control", str(kind).encode()))
            self.next_fetch_offset = record.offset + 1
            yield ConsumerRecord(
                tp.topic, tp.partition, -1, record.offset, record.timestamp,
                record.timestamp_type, record.key, record.value, headers, None,
                -1, -1, -1)
        self.next_fetch_offset = batch.next_offset
        batch = records.next_batch()
    self.drain()


Fetcher.PartitionRecords._unpack_records = unpack_with_markers


def main():
    brokers, topic = sys.argv[1], sys.argv[2]
    consumer = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                             isolation_level="read_uncommitted")
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)
    committed, aborted, pending = [], 0, {}
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        if time.monotonic() > deadline:
            sys.exit(f"timed out reading {topic} to its end offsets {ends}")
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                tags = dict(record.headers)
                producer = (record.topic, record.partition, tags["__producer"])
                if "__control" in tags:
                    kept = pending.pop(producer, [])
                    if int(tags["__control"]) == CONTROL_COMMIT:
                        committed += kept
                    else:
                        aborted += len(kept)
                elif tags["__producer"]:
                    pending.setdefault(producer, []).append(record.value)
                else:
                    committed.append(record.value)
    consumer.close()
    for value in committed:
        print((value or b"").decode())
    open_records = sum(len(v) for v in pending.values())
    print(f"committed {len(committed)} aborted {aborted} open {open_records}", file=sys.stderr)


if __name__ == "__main__":
    main()
