//! Command-line flags, environment variables and `laminar.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

/// Laminar: a streaming SQL server. Connect with psql (`psql -h 127.0.0.1 -p 6875`) or any
/// Postgres driver; manage connectors and pipelines over REST.
#[derive(Debug, Parser)]
#[command(name = "laminar", version)]
pub struct Args {
    /// Postgres wire protocol address [default: 127.0.0.1:6875]
    #[arg(long, env = "LAMINAR_PG_ADDR")]
    pub pg_addr: Option<SocketAddr>,
    /// REST API address [default: 127.0.0.1:8000]
    #[arg(long, env = "LAMINAR_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Directory for the catalog (SQLite) and checkpoints [default: ./laminar-data]
    #[arg(long, env = "LAMINAR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file with the same settings (flags and env win) [default: ./laminar.toml if present]
    #[arg(long, env = "LAMINAR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Bearer token required by the REST API (set via env to keep it out of `ps`)
    #[arg(long, env = "LAMINAR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// PEM certificate (chain) for TLS on pgwire and REST; needs --tls-key
    #[arg(long, env = "LAMINAR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "LAMINAR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require SCRAM-SHA-256 password authentication on pgwire for this user (with
    /// LAMINAR_PG_PASSWORD); more users go in laminar.toml as [[users]]
    #[arg(long, env = "LAMINAR_PG_USER")]
    pub pg_user: Option<String>,
    /// Password of --pg-user (set via env to keep it out of `ps`)
    #[arg(long, env = "LAMINAR_PG_PASSWORD", hide_env_values = true)]
    pub pg_password: Option<String>,
    /// Partitions each query and pipeline runs in unless it sets its own (`SET parallelism`)
    /// [default: the machine's cores]
    #[arg(long, env = "LAMINAR_PARALLELISM")]
    pub parallelism: Option<usize>,
}

/// A pgwire user who logs in with a password (SCRAM-SHA-256).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// Certificate and key files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `laminar.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    pg_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    api_token: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    users: Vec<User>,
    parallelism: Option<usize>,
}

/// The resolved server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub pg_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub api_token: Option<String>,
    /// TLS for pgwire (SSLRequest) and REST (HTTPS), when configured.
    pub tls: Option<TlsFiles>,
    /// With any user, pgwire clients must log in with a password (SCRAM-SHA-256).
    pub users: Vec<User>,
    /// The parallelism of sessions (and pipelines) that set none.
    pub parallelism: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 6875)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("laminar-data"),
            api_token: None,
            tls: None,
            users: Vec::new(),
            parallelism: engine::session::default_parallelism(),
        }
    }
}

impl Config {
    /// Merge flags/env over the config file over the defaults.
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => {
                let default = PathBuf::from("laminar.toml");
                if default.exists() {
                    read_file(&default)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let defaults = Config::default();
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => bail!("--tls-cert needs --tls-key (the certificate's private key)"),
            (None, Some(_)) => bail!("--tls-key needs --tls-cert (the certificate for that key)"),
        };
        let mut users = file.users;
        match (args.pg_user, args.pg_password) {
            (Some(name), Some(password)) => {
                users.retain(|u| u.name != name);
                users.push(User { name, password });
            }
            (None, None) => {}
            (Some(_), None) => {
                bail!("--pg-user needs a password: set LAMINAR_PG_PASSWORD (or --pg-password)")
            }
            (None, Some(_)) => {
                bail!("LAMINAR_PG_PASSWORD needs a user name: set LAMINAR_PG_USER (or --pg-user)")
            }
        }
        let config = Config {
            pg_addr: args.pg_addr.or(file.pg_addr).unwrap_or(defaults.pg_addr),
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .unwrap_or(defaults.http_addr),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or(defaults.data_dir),
            api_token: args.api_token.or(file.api_token).filter(|t| !t.is_empty()),
            tls,
            users,
            parallelism: args
                .parallelism
                .or(file.parallelism)
                .unwrap_or(defaults.parallelism),
        };
        config.check()?;
        Ok(config)
    }

    /// Refuse to expose an unauthenticated API beyond this machine, and settings that
    /// cannot work.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.parallelism == 0 {
            bail!("parallelism must be at least 1 (the partitions each query runs in)");
        }
        if !self.http_addr.ip().is_loopback() && self.api_token.is_none() {
            bail!(
                "refusing to serve the REST API on {} without authentication: set LAMINAR_API_TOKEN \
                 (or api_token in laminar.toml), or bind to 127.0.0.1",
                self.http_addr
            );
        }
        if !self.pg_addr.ip().is_loopback() && self.users.is_empty() {
            bail!(
                "refusing to accept Postgres clients on {} without authentication: set \
                 LAMINAR_PG_USER and LAMINAR_PG_PASSWORD (or [[users]] name/password entries in \
                 laminar.toml) so clients log in with SCRAM-SHA-256, and consider --tls-cert/--tls-key; \
                 or bind to 127.0.0.1",
                self.pg_addr
            );
        }
        for user in &self.users {
            if user.name.is_empty() || user.password.is_empty() {
                bail!(
                    "every pgwire user needs a non-empty name and password (user '{}')",
                    user.name
                );
            }
        }
        Ok(())
    }
}

fn read_file(path: &PathBuf) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("laminar").chain(list.iter().copied()))
    }

    #[test]
    fn defaults_file_and_flags_in_order() {
        let dir = std::env::temp_dir().join(format!("laminar-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("laminar.toml");
        std::fs::write(
            &file,
            "pg_addr = \"127.0.0.1:7000\"\ndata_dir = \"/tmp/from-file\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();

        let config = Config::resolve(args(&["--config", path])).unwrap();
        assert_eq!(config.pg_addr.port(), 7000);
        assert_eq!(config.http_addr.port(), 8000);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));

        let config =
            Config::resolve(args(&["--config", path, "--pg-addr", "127.0.0.1:7001"])).unwrap();
        assert_eq!(config.pg_addr.port(), 7001);

        std::fs::write(&file, "pg_adr = \"127.0.0.1:7000\"\n").unwrap();
        let err = Config::resolve(args(&["--config", path])).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `pg_adr`"),
            "{err:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn public_rest_needs_a_token() {
        let config = Config {
            http_addr: "0.0.0.0:8000".parse().unwrap(),
            ..Config::default()
        };
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains("LAMINAR_API_TOKEN"), "{err}");
        let config = Config {
            api_token: Some("t".into()),
            ..config
        };
        config.check().unwrap();
    }

    #[test]
    fn public_pgwire_needs_users() {
        let config = Config {
            pg_addr: "0.0.0.0:6875".parse().unwrap(),
            ..Config::default()
        };
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains("LAMINAR_PG_PASSWORD"), "{err}");
        let config = Config {
            users: vec![User {
                name: "alice".into(),
                password: "pw".into(),
            }],
            ..config
        };
        config.check().unwrap();
    }

    #[test]
    fn parallelism_defaults_to_the_cores() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Config::resolve(args(&[])).unwrap().parallelism, cores);
        let config = Config::resolve(args(&["--parallelism", "3"])).unwrap();
        assert_eq!(config.parallelism, 3);
        let err = Config::resolve(args(&["--parallelism", "0"])).unwrap_err();
        assert!(
            err.to_string().contains("parallelism must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn tls_needs_cert_and_key() {
        let err = Config::resolve(args(&["--tls-cert", "/tmp/c.pem"])).unwrap_err();
        assert!(err.to_string().contains("--tls-key"), "{err}");
        let err = Config::resolve(args(&["--pg-user", "alice"])).unwrap_err();
        assert!(err.to_string().contains("LAMINAR_PG_PASSWORD"), "{err}");
    }
}
