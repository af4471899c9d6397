//! Runs the MindTickle emulator as a standalone server.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::Parser;
use mindtickle_emulator::{
    Emulator, Fixtures, GeneratorSpec, ListenAddrs, Options, RateLimitProfile, Region,
};

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
    /// Print fixtures generated from SEED:COMPANIES:USERS (users per company) as JSON and
    /// exit, for example 42:3:100. Save the output and serve it with --fixtures.
    #[arg(long, value_name = "SEED:COMPANIES:USERS", value_parser = parse_generator_spec)]
    generate: Option<GeneratorSpec>,
}

fn parse_generator_spec(value: &str) -> Result<GeneratorSpec, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let [seed, companies, users] = parts.as_slice() else {
        return Err(format!(
            "expected SEED:COMPANIES:USERS, such as 42:3:100, but got {value:?}"
        ));
    };
    let number = |name: &str, raw: &str| -> Result<u64, String> {
        raw.parse()
            .map_err(|_| format!("{name} {raw:?} is not a non-negative integer"))
    };
    let seed = number("SEED", seed)?;
    let companies = usize::try_from(number("COMPANIES", companies)?)
        .map_err(|_| "COMPANIES is too large".to_owned())?;
    let users =
        usize::try_from(number("USERS", users)?).map_err(|_| "USERS is too large".to_owned())?;
    Ok(GeneratorSpec::new(seed, companies, users))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if let Some(spec) = &args.generate {
        println!("{}", mindtickle_emulator::generate_fixtures(spec).to_json());
        return Ok(());
    }

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
