//! Password logins (SCRAM-SHA-256) and TLS on the REST API. psql over TLS
//! (`sslmode=require`) is checked by scripts/psql-checks.sh with the real psql.

use std::path::PathBuf;

use server::config::{TlsFiles, User};
use server::{Config, Server};
use tokio_postgres::NoTls;

use crate::support::DataDir;

fn fixture(name: &str) -> PathBuf {
    // At run time: a test binary reused from a build in another checkout must not read that
    // checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/fixtures/tls")
        .join(name)
}

async fn start_secured(dir: &DataDir) -> Server {
    server::start(Config {
        pg_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.0.clone(),
        users: vec![User {
            name: "alice".into(),
            password: "s3cret".into(),
        }],
        tls: Some(TlsFiles {
            cert: fixture("cert.pem"),
            key: fixture("key.pem"),
        }),
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn login(server: &Server, user: &str, password: &str) -> Result<i64, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=laminar",
            server.pg_addr.port()
        ),
        NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let row = client.query_one("SELECT 41 + 1", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn configured_users_log_in_with_scram_and_others_are_refused() {
    let dir = DataDir::new("scram");
    let server = start_secured(&dir).await;

    assert_eq!(login(&server, "alice", "s3cret").await.unwrap(), 42);

    let wrong = login(&server, "alice", "guess").await.unwrap_err();
    let db = wrong.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "28P01");
    assert!(db.message().contains("alice"), "{}", db.message());

    let unknown = login(&server, "mallory", "s3cret").await.unwrap_err();
    assert_eq!(unknown.as_db_error().unwrap().code().code(), "28P01");
    server.shutdown().await;
}

#[tokio::test]
async fn rest_api_speaks_https_with_the_configured_certificate() {
    let dir = DataDir::new("https");
    let server = start_secured(&dir).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let port = server.http_addr.port();
    let pong = client
        .get(format!("https://127.0.0.1:{port}/v1/ping"))
        .send()
        .await
        .unwrap();
    assert!(pong.status().is_success());
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/v1/ping"))
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_that_is_not_pem_is_a_clear_error() {
    let dir = DataDir::new("bad-key");
    let bad = dir.0.join("key.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let err = server::start(Config {
        pg_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.0.clone(),
        tls: Some(TlsFiles {
            cert: fixture("cert.pem"),
            key: bad.clone(),
        }),
        ..Config::default()
    })
    .await
    .err()
    .expect("a broken key must stop the start");
    let text = format!("{err:#}");
    assert!(text.contains("TLS private key"), "{text}");
}
