//! Runs every `slt/*.slt` file against a fresh in-process Laminar server over pgwire.
//!
//! `cargo test -p sql-tests` runs them all; `cargo test -p sql-tests -- <substring>` runs the
//! files whose name contains the substring. Errors are reported as `<SQLSTATE>: <message>`, so
//! `statement error 42809: cannot SELECT` checks both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn describe(e: tokio_postgres::Error) -> SltError {
    match e.as_db_error() {
        Some(db) => SltError(format!("{}: {}", db.code().code(), db.message())),
        None => SltError(e.to_string()),
    }
}

struct Laminar {
    client: tokio_postgres::Client,
}

#[async_trait]
impl AsyncDB for Laminar {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let messages = self.client.simple_query(sql).await.map_err(describe)?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut affected = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => columns = Some(desc.len()),
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "laminar"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

async fn run_file(path: &Path) -> Result<(), String> {
    let data_dir = std::env::temp_dir().join(format!(
        "laminar-slt-{}-{}",
        std::process::id(),
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    let config = server::Config {
        pg_addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        http_addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: data_dir.clone(),
        // Files are written for one partition (some check row order); parallel.slt and the
        // PARALLEL_AGAIN copies set parallelism themselves. LAMINAR_SLT_PARALLELISM runs them
        // all at another (to look for what breaks besides row order).
        parallelism: std::env::var("LAMINAR_SLT_PARALLELISM")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(1),
        ..server::Config::default()
    };
    let server = server::start(config).await.map_err(|e| format!("{e:#}"))?;
    let port = server.pg_addr.port();
    let mut runner = Runner::new(move || async move {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=laminar dbname=laminar"),
            NoTls,
        )
        .await
        .map_err(describe)?;
        tokio::spawn(connection);
        Ok(Laminar { client })
    });
    runner.set_var("http".to_string(), server.http_addr.to_string());
    // A scratch directory per file for file sources and sinks: ${dir}.
    let scratch = data_dir.join("files");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    runner.set_var("dir".to_string(), scratch.display().to_string());
    // The S3-compatible endpoint scripts/services.sh starts (moto), and a key prefix unique
    // to this run.
    let s3 = std::env::var("LAMINAR_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    runner.set_var("s3".to_string(), s3);
    runner.set_var("run".to_string(), format!("run{}", std::process::id()));
    // The Kafka-compatible broker scripts/services.sh starts, and the scripts directory
    // (scripts/kafka_tool.py produces and consumes independently of Laminar).
    let kafka = std::env::var("LAMINAR_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    runner.set_var("kafka".to_string(), kafka);
    // A second broker that requires SASL and knows no users (authentication failures).
    let kafka_auth =
        std::env::var("LAMINAR_TEST_KAFKA_AUTH").unwrap_or_else(|_| "127.0.0.1:9094".into());
    runner.set_var("saslkafka".to_string(), kafka_auth);
    // The schema registry of scripts/services.sh (a Confluent-compatible substitute).
    let registry =
        std::env::var("LAMINAR_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:8081".into());
    runner.set_var("registry".to_string(), registry);
    let scripts = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../scripts");
    runner.set_var("scripts".to_string(), scripts.display().to_string());
    let result = runner
        .run_file_async(path)
        .await
        .map_err(|e| e.display(true).to_string());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

fn slt_files() -> Vec<PathBuf> {
    // At run time: a test binary reused from a build in another checkout must not read that
    // checkout's files.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    files
}

/// Files whose results do not depend on how rows of parallel partitions interleave: they
/// run a second time with `parallelism` 2 (as `<name>.parallel2.slt`).
const PARALLEL_AGAIN: &[&str] = &[
    "interval_joins.slt",
    "materialized.slt",
    "nexmark_suite.slt",
    "nexmark_windows.slt",
];

/// Copies of the [`PARALLEL_AGAIN`] files that first set `parallelism` to 2.
fn parallel_variants(files: &[PathBuf]) -> Vec<PathBuf> {
    let dir = std::env::temp_dir().join(format!("laminar-slt-parallel-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| PARALLEL_AGAIN.iter().any(|f| n == *f))
        })
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("readable .slt file");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
            let copy = dir.join(format!("{stem}.parallel2.slt"));
            std::fs::write(
                &copy,
                format!("statement ok\nSET parallelism = 2;\n\n{text}"),
            )
            .expect("writable temp dir");
            copy
        })
        .collect()
}

/// How long one .slt file may take.
const FILE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

#[tokio::main]
async fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = Vec::new();
    let mut files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    files.extend(parallel_variants(&files));
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let started = std::time::Instant::now();
        // A continuous query that never ends would hang CI: a file gets a deadline.
        match tokio::time::timeout(FILE_DEADLINE, run_file(&path)).await {
            Ok(Ok(())) => println!("ok   {name} ({:.1}s)", started.elapsed().as_secs_f64()),
            Ok(Err(e)) => {
                println!("FAIL {name}\n{e}");
                failed.push(name);
            }
            Err(_) => {
                println!(
                    "FAIL {name}\nstill running after {} s (a query that never ends?)",
                    FILE_DEADLINE.as_secs()
                );
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
