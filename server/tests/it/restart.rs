//! The catalog and running pipelines survive a restart.

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::support::{DataDir, connect, start_in};

async fn pipeline_states(client: &tokio_postgres::Client) -> Vec<(String, String)> {
    client
        .simple_query("SHOW PIPELINES")
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((r.get(1)?.to_string(), r.get(2)?.to_string())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn pipelines_resume_after_restart() {
    let dir = DataDir::new("restart");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE src WITH (connector = 'impulse', event_rate = '500');
             CREATE TABLE sink (counter BIGINT) WITH (connector = 'blackhole', type = 'sink');
             CREATE CONNECTION PROFILE p WITH (connector = 'impulse');
             CREATE PIPELINE keep AS INSERT INTO sink SELECT counter FROM src;
             CREATE PIPELINE paused AS INSERT INTO sink SELECT counter FROM src WHERE counter > 5;
             STOP PIPELINE paused;",
        )
        .await
        .unwrap();
    server.shutdown().await;

    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    assert_eq!(
        pipeline_states(&client).await,
        vec![
            ("keep".into(), "Running".into()),
            ("paused".into(), "Stopped".into())
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = client.simple_query("SHOW PIPELINES").await.unwrap();
    let records_out: u64 = rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) if r.get(1) == Some("keep") => {
                r.get(4).map(|v| v.parse().unwrap())
            }
            _ => None,
        })
        .unwrap();
    assert!(records_out > 0, "the resumed pipeline moves data");
    let tables = client.simple_query("SHOW TABLES").await.unwrap();
    assert_eq!(
        tables
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count(),
        2
    );
    let profiles = client
        .simple_query("SHOW CONNECTION PROFILES")
        .await
        .unwrap();
    assert_eq!(
        profiles
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count(),
        1
    );
    server.shutdown().await;
}

#[tokio::test]
async fn finished_pipelines_are_not_rerun_after_restart() {
    let dir = DataDir::new("restart-finished");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE src WITH (connector = 'impulse', event_rate = '1000000', message_count = '100');
             CREATE TABLE sink (counter BIGINT) WITH (connector = 'blackhole', type = 'sink');
             CREATE PIPELINE once AS INSERT INTO sink SELECT counter FROM src;",
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if pipeline_states(&client).await == vec![("once".to_string(), "Finished".to_string())] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pipeline_states(&client).await,
        vec![("once".into(), "Finished".into())]
    );
    server.shutdown().await;

    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    assert_eq!(
        pipeline_states(&client).await,
        vec![("once".into(), "Finished".into())]
    );
    let jobs = client.simple_query("SHOW JOBS").await.unwrap();
    assert_eq!(
        jobs.iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count(),
        1,
        "no second run"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_unopenable_catalog_is_a_clear_error() {
    let dir = DataDir::new("bad-catalog");
    std::fs::create_dir_all(dir.0.join("catalog.db")).unwrap();
    let err = server::start(server::Config {
        pg_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.0.clone(),
        ..server::Config::default()
    })
    .await
    .err()
    .expect("a directory where the catalog file should be cannot be opened");
    let text = format!("{err:#}");
    assert!(text.contains("cannot open the catalog"), "{text}");
}

/// The first column of the first row of a simple query.
async fn first_value(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
}

#[tokio::test]
async fn materialized_views_are_rebuilt_after_restart() {
    let dir = DataDir::new("restart-mv");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE ten WITH (connector = 'impulse', event_rate = '100000', message_count = '10');
             SET updating_ttl = '2 hours';
             CREATE MATERIALIZED VIEW parity AS SELECT counter % 2 AS p, count(*) AS n FROM ten GROUP BY 1;",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = first_value(&client, "SELECT sum(n) FROM parity").await;
    assert_eq!(before.as_deref(), Some("10"));
    server.shutdown().await;

    // The view's query runs again from its source's start and rebuilds the same contents.
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = first_value(&client, "SELECT sum(n) FROM parity").await;
    assert_eq!(after.as_deref(), Some("10"));
    assert_eq!(
        first_value(&client, "SELECT count(*) FROM parity")
            .await
            .as_deref(),
        Some("2")
    );
    server.shutdown().await;
}
