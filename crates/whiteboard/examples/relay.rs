//! The relay alone on one port with /metrics and /health, for the crate's own tests and benchmarks.
//!
//! Usage: `cargo run -p convene-whiteboard --example relay -- --listen 127.0.0.1:0 [--config FILE]`
//! (FILE holds a `[whiteboard]` section).

use std::sync::Arc;

use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use convene_whiteboard::{Config, Relay};
use prometheus_client::registry::Registry;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// TOML file with a [whiteboard] section.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Runtime worker threads (0 = one per core, like `#[tokio::main]`; 1 = single-threaded).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct File {
    whiteboard: Config,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match &args.config {
        Some(path) => toml::from_str::<File>(&std::fs::read_to_string(path)?)?.whiteboard,
        None => Config::default(),
    };
    let mut registry = Registry::with_prefix("convene");
    let relay = Arc::new(Relay::new(
        config,
        registry.sub_registry_with_prefix("whiteboard"),
    ));
    let registry = Arc::new(registry);
    let app = relay
        .router()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    // Writing into a String cannot fail.
                    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
                    text
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!("http listening on {}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let closing = relay.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            closing.close_all().await;
        })
        .await?;
    Ok(())
}
