//! Raw rdkafka throughput on this machine, the baseline for Laminar's Kafka numbers
//! (scripts/bench-kafka.sh): the same client library, no SQL, no Arrow.
//!
//!   kafka_baseline produce BROKERS TOPIC RECORDS   # JSON records like the bench's rows
//!   kafka_baseline consume BROKERS TOPIC RECORDS   # from the start of every partition
//!
//! Prints `records seconds bytes`.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

type Error = Box<dyn std::error::Error>;

fn record(i: u64) -> String {
    format!(
        r#"{{"id":{i},"name":"customer-{}","amount":{}.25,"note":"a short note"}}"#,
        i % 1000,
        i % 500
    )
}

async fn produce(brokers: &str, topic: &str, records: u64) -> Result<(), Error> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut in_flight = Vec::new();
    for i in 0..records {
        let payload = record(i);
        bytes += payload.len() as u64;
        let mut message = FutureRecord::<(), str>::to(topic).payload(&payload);
        loop {
            match producer.send_result(message) {
                Ok(delivery) => {
                    in_flight.push(delivery);
                    break;
                }
                Err((_, back)) => {
                    message = back;
                    for delivery in in_flight.drain(..) {
                        delivery.await?.map_err(|(e, _)| e)?;
                    }
                }
            }
        }
        if in_flight.len() >= 50_000 {
            for delivery in in_flight.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in in_flight.drain(..) {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;
    println!("{records} {} {bytes}", started.elapsed().as_secs_f64());
    Ok(())
}

async fn consume(brokers: &str, topic: &str, records: u64) -> Result<(), Error> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-baseline")
        .set("enable.auto.commit", "false")
        // As Laminar's source sets it (librdkafka's 1 s default pauses fetching whenever the
        // local queue is full).
        .set("fetch.queue.backoff.ms", "1")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        list.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let started = Instant::now();
    let (mut seen, mut bytes) = (0u64, 0u64);
    while seen < records {
        let message = consumer.recv().await?;
        bytes += message.payload().map_or(0, |p| p.len() as u64);
        seen += 1;
    }
    println!("{seen} {} {bytes}", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, brokers, topic, records] = args.as_slice() else {
        return Err("usage: kafka_baseline produce|consume BROKERS TOPIC RECORDS".into());
    };
    let records: u64 = records.parse()?;
    match command.as_str() {
        "produce" => produce(brokers, topic, records).await,
        "consume" => consume(brokers, topic, records).await,
        other => Err(format!("unknown command {other}").into()),
    }
}
