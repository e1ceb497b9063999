//! The `vitals` binary: `vitals` or `vitals serve` runs the server.

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("serve") => match vitals::rocket().launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!(target: "vitals", "launch failed: {e}");
                ExitCode::FAILURE
            }
        },
        Some(other) => {
            eprintln!("vitals: unknown command '{other}'\nusage: vitals [serve]");
            ExitCode::from(2)
        }
    }
}
