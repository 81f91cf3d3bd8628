use clap::Parser;
use server::config::{Args, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LAMINAR_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::resolve(Args::parse())?;
    let user = config
        .users
        .first()
        .map_or_else(|| "laminar".to_string(), |u| u.name.clone());
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = server::start(config).await?;
    println!(
        "Laminar is ready: psql -h {} -p {} -U {user} -d laminar   (REST: {scheme}://{}/v1)",
        server.pg_addr.ip(),
        server.pg_addr.port(),
        server.http_addr
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("shutting down...");
    server.shutdown().await;
    Ok(())
}
