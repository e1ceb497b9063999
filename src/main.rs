//! The `vitals` binary: `vitals` or `vitals serve` runs the server; `vitals healthcheck [URL]`
//! probes one (see `vitals::healthcheck`); `vitals probes [--check FILE...]` derives and checks
//! probe settings (see `vitals::probes`).

use std::process::ExitCode;

const USAGE: &str = "usage: vitals [serve]\n       vitals healthcheck [URL]\n       \
                     vitals probes [--profile NAME] [--check FILE...]";

#[rocket::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => match vitals::rocket().launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!(target: "vitals", "launch failed: {e}");
                ExitCode::FAILURE
            }
        },
        Some("healthcheck") => vitals::healthcheck::run(&args[1..]).await,
        Some("probes") => vitals::probes::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("vitals: unknown command '{other}'\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
