//! Runs the MindTickle emulator as a standalone server.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::Parser;
use mindtickle_emulator::{Emulator, Fixtures, ListenAddrs, Options, RateLimitProfile, Region};

/// Serves a local MindTickle API: the global API host on --listen, the admin (OData) host on
/// the next port and the US API host on the one after.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address of the global API listener.
    #[arg(long, default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// Fixture JSON file; the built-in demo data when omitted.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Rate-limit profile: documented (5/s, 220/min, 3000/h), strict (4/s, 60/min) or off.
    #[arg(long, default_value = "documented")]
    rate_limit: RateLimitProfile,
    /// Serve xAPI `stored` times divided by 1000, as one live tenant does.
    #[arg(long)]
    stored_quirk: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    let fixtures = match &args.fixtures {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("read fixtures from {}", path.display()))?;
            Fixtures::from_json(&json)
                .with_context(|| format!("load fixtures from {}", path.display()))?
        }
        None => mindtickle_emulator::demo_fixtures(),
    };
    let next_port = |offset: u16| -> anyhow::Result<SocketAddr> {
        let port = args.listen.port().checked_add(offset).with_context(|| {
            format!(
                "--listen port {} leaves no room for the admin and US listeners",
                args.listen.port()
            )
        })?;
        Ok(SocketAddr::new(args.listen.ip(), port))
    };
    let addrs = ListenAddrs {
        api: args.listen,
        admin: next_port(1)?,
        api_us: next_port(2)?,
    };
    let options = Options {
        rate_limit: args.rate_limit,
        stored_quirk: args.stored_quirk,
        ..Options::default()
    };

    let emulator = Emulator::start_on(fixtures, options, addrs).await?;
    println!("global API: {}", emulator.api_url(Region::Global));
    println!("admin:      {}", emulator.admin_url());
    println!("US API:     {}", emulator.api_url(Region::Us));
    tracing::info!("emulator started; press Ctrl-C to stop");

    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    emulator.shutdown().await;
    tracing::info!("emulator stopped");
    Ok(())
}
