use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bridge::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(bridge::cli::run(cli))
}
