//! The Postgres wire protocol: streaming, cancel, extended protocol, errors.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::support::{DataDir, connect, sqlstate, start_in};

#[tokio::test]
async fn rows_stream_live_and_cancel_gives_57014() {
    let dir = DataDir::new("stream");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .simple_query("CREATE TABLE slow WITH (connector = 'impulse', event_rate = '20')")
        .await
        .unwrap();

    let started = Instant::now();
    let stream = client
        .simple_query_raw("SELECT counter FROM slow")
        .await
        .unwrap();
    futures::pin_mut!(stream);
    let mut counters = Vec::new();
    while counters.len() < 3 {
        match stream.next().await.unwrap().unwrap() {
            SimpleQueryMessage::Row(row) => counters.push(row.get(0).unwrap().to_string()),
            _ => continue,
        }
    }
    // At 20 rows/s the third row exists after ~100 ms: rows arrive as produced, not at the end.
    assert_eq!(counters, ["0", "1", "2"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    client.cancel_token().cancel_query(NoTls).await.unwrap();
    let mut error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the cancelled query must end with an error");
    assert_eq!(sqlstate(&error), "57014");

    // The connection is usable afterwards.
    let rows = client.simple_query("SELECT 41 + 1").await.unwrap();
    let value = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("42"));
    server.shutdown().await;
}

#[tokio::test]
async fn extended_protocol_returns_typed_rows() {
    let dir = DataDir::new("extended");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE t WITH (connector = 'impulse', event_rate = '100000', message_count = '10')")
        .await
        .unwrap();
    // tokio-postgres uses Parse/Describe/Bind/Execute with binary results.
    let rows = client
        .query("SELECT counter, counter * 2 AS doubled, CAST(counter AS TEXT) AS label FROM t WHERE counter < 3", &[])
        .await
        .unwrap();
    let got: Vec<(i64, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![(0, 0, "0".into()), (1, 2, "1".into()), (2, 4, "2".into())]
    );

    // A prepared statement is reusable.
    let statement = client.prepare("SELECT count(*) AS n FROM t").await.unwrap();
    for _ in 0..2 {
        let n: i64 = client.query_one(&statement, &[]).await.unwrap().get(0);
        assert_eq!(n, 10);
    }

    // Parameters: types inferred from the query, values bound per execution.
    let statement = client
        .prepare("SELECT counter, $2 || CAST(counter AS TEXT) AS label FROM t WHERE counter >= $1 AND counter < $1 + 2")
        .await
        .unwrap();
    assert_eq!(statement.params()[0], tokio_postgres::types::Type::INT8);
    for (from, prefix) in [(3i64, "n"), (7, "m")] {
        let rows = client.query(&statement, &[&from, &prefix]).await.unwrap();
        let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            got,
            vec![
                (from, format!("{prefix}{from}")),
                (from + 1, format!("{prefix}{}", from + 1))
            ]
        );
    }
    // A client declaring the parameter as text gets the value cast to the planner's type;
    // a value that type cannot hold is refused by the server with 22023.
    let as_text = client
        .prepare_typed(
            "SELECT counter FROM t WHERE counter = $1",
            &[tokio_postgres::types::Type::TEXT],
        )
        .await
        .unwrap();
    let rows = client.query(&as_text, &[&"7"]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 7);
    let err = client.query(&as_text, &[&"x"]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "22023", "{err}");

    let err = client
        .query("SELECT missing FROM t", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42703");
    server.shutdown().await;
}

#[tokio::test]
async fn errors_carry_sqlstates_and_leave_nothing_behind() {
    let dir = DataDir::new("errors");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    let cases = [
        ("CREATE TABLE t WITH (connector = 'nope')", "42704"),
        ("CREATE TABLE t WITH (connector = 'impulse')", "22023"),
        (
            "CREATE TABLE t WITH (connector = 'impulse', event_rate = 'x')",
            "22023",
        ),
        (
            "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1', evnt_rate = '2')",
            "22023",
        ),
        ("SELECT * FROM t", "42P01"),
        ("CREATE TABL t", "42601"),
    ];
    for (sql, code) in cases {
        let err = client.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&err), code, "{sql}: {err}");
    }
    let rows = client.simple_query("SHOW TABLES").await.unwrap();
    assert!(!rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_client_stops_its_query() {
    let dir = DataDir::new("disconnect");
    let server = start_in(&dir, None).await;
    {
        let client = connect(&server).await;
        client
            .simple_query(
                "CREATE TABLE fast WITH (connector = 'impulse', event_rate = '1000000000')",
            )
            .await
            .unwrap();
        let stream = client
            .simple_query_raw("SELECT counter FROM fast")
            .await
            .unwrap();
        futures::pin_mut!(stream);
        stream.next().await.unwrap().unwrap();
    }
    // The server stays responsive and shuts down promptly: nothing keeps running.
    let client = connect(&server).await;
    client.simple_query("SHOW TABLES").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown must not wait on an orphaned query");
}

#[tokio::test]
async fn cursors_declared_over_the_extended_protocol() {
    let dir = DataDir::new("extended-cursor");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE live WITH (connector = 'impulse', event_rate = '500'); BEGIN;")
        .await
        .unwrap();
    // As psycopg's named cursors do: DECLARE through Parse/Bind/Execute, FETCH as simple queries.
    client
        .execute(
            "DECLARE c1 CURSOR FOR SELECT counter * 2 AS doubled FROM live",
            &[],
        )
        .await
        .unwrap();
    for expected in [["0", "2"], ["4", "6"]] {
        let rows = client
            .simple_query("FETCH FORWARD 2 FROM c1")
            .await
            .unwrap();
        let values: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        assert_eq!(values, expected);
    }
    client.batch_execute("CLOSE c1; COMMIT;").await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_with_progress_marks_idle_time() {
    let dir = DataDir::new("subscribe-progress");
    let server = start_in(&dir, None).await;
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE three WITH (connector = 'impulse', event_rate = '100', message_count = '3');
             CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n FROM three;
             BEGIN;
             DECLARE c CURSOR FOR SUBSCRIBE total WITH (PROGRESS);",
        )
        .await
        .unwrap();
    // Rows are (_timestamp, _progressed, n, _op).
    let rows = client
        .simple_query("FETCH ALL FROM c WITH (timeout = '2500ms')")
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>)> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((r.get(1).unwrap().to_string(), r.get(2).map(str::to_string)))
            }
            _ => None,
        })
        .collect();
    let data: Vec<&Option<String>> = rows
        .iter()
        .filter(|(progressed, _)| progressed == "f")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(data.last(), Some(&&Some("3".to_string())), "{rows:?}");
    let progress: Vec<&Option<String>> = rows
        .iter()
        .filter(|(progressed, _)| progressed == "t")
        .map(|(_, n)| n)
        .collect();
    // Nothing changes after the count reaches 3: about one progress row a second.
    assert!(!progress.is_empty(), "{rows:?}");
    assert!(progress.iter().all(|n| n.is_none()), "{rows:?}");

    let err = client
        .simple_query("SUBSCRIBE total WITH (snapshot = false)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    server.shutdown().await;
}
