use std::path::PathBuf;

use server::{Config, Server};
use tokio_postgres::{Client, NoTls};

/// A fresh data directory, removed when dropped.
pub(crate) struct DataDir(pub(crate) PathBuf);

impl DataDir {
    pub(crate) fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("laminar-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) async fn start_in(dir: &DataDir, token: Option<&str>) -> Server {
    server::start(Config {
        pg_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.0.clone(),
        api_token: token.map(str::to_string),
        // Tests are written for one partition unless they set their own parallelism.
        parallelism: 1,
        ..Config::default()
    })
    .await
    .unwrap()
}

pub(crate) async fn connect(server: &Server) -> Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=laminar dbname=laminar",
            server.pg_addr.port()
        ),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// The SQLSTATE of a failed statement.
pub(crate) fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}
