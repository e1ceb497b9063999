//! The `vitals` binary: reads the command line and hands each command its arguments; the
//! commands themselves decide nothing here. `vitals` or `vitals serve` runs the server;
//! `vitals healthcheck [URL]` probes one (see `vitals::healthcheck`); `vitals probes
//! [--profile NAME] [--check FILE...]` derives and checks probe settings (see
//! `vitals::probes`). `--help` after any command says how to use it.

use std::process::ExitCode;

use vitals::probes::Options;

const USAGE: &str = "usage: vitals [serve]\n       vitals healthcheck [URL]\n       \
                     vitals probes [--profile NAME] [--check FILE...]\n\
                     `vitals COMMAND --help` says more.";

const SERVE: &str = "usage: vitals [serve]\n\
                     Serves the health endpoints, configured by the built-in defaults,\n\
                     Rocket.toml and the environment (README: Configuration).";

const HEALTHCHECK: &str = "usage: vitals healthcheck [URL]\n\
                           GETs URL (default http://127.0.0.1:$ROCKET_PORT/health/ready)\n\
                           and exits 0 on a 2xx answer, 1 otherwise, within 3 s.";

const PROBES: &str = "usage: vitals probes [--profile NAME] [--check FILE...]\n\
                      Prints probe settings that fit the configuration of profile NAME\n\
                      (default: the active one); with --check, finds what does not fit in\n\
                      Kubernetes manifests, compose files and Dockerfiles. Exits 0 when\n\
                      everything fits, 1 with findings, 2 on a bad argument, file or\n\
                      configuration.";

/// What the command line asks for.
enum Command {
    Serve,
    Healthcheck(Option<String>),
    Probes(Options),
    Help(&'static str),
}

/// A command line that cannot be run: what to say, and the exit code (`healthcheck`'s is 1,
/// the only failure a container's HEALTHCHECK knows; the others' 2).
struct Usage {
    message: String,
    help: &'static str,
    code: u8,
}

fn parse(args: &[String]) -> Result<Command, Usage> {
    let wants_help = |rest: &[String]| rest.iter().any(|a| a == "-h" || a == "--help");
    let usage = |message: String, help: &'static str, code: u8| Usage {
        message,
        help,
        code,
    };
    match args.split_first() {
        None => Ok(Command::Serve),
        Some((first, rest)) => match first.as_str() {
            "-h" | "--help" | "help" => Ok(Command::Help(USAGE)),
            "serve" if wants_help(rest) => Ok(Command::Help(SERVE)),
            "serve" => match rest {
                [] => Ok(Command::Serve),
                [other, ..] => Err(usage(format!("serve takes no '{other}'"), SERVE, 2)),
            },
            "healthcheck" if wants_help(rest) => Ok(Command::Help(HEALTHCHECK)),
            "healthcheck" => match rest {
                [] => Ok(Command::Healthcheck(None)),
                [url] if !url.starts_with('-') => Ok(Command::Healthcheck(Some(url.clone()))),
                _ => Err(usage(
                    format!("healthcheck takes one URL, not '{}'", rest.join(" ")),
                    HEALTHCHECK,
                    1,
                )),
            },
            "probes" if wants_help(rest) => Ok(Command::Help(PROBES)),
            "probes" => parse_probes(rest).map_err(|message| usage(message, PROBES, 2)),
            other => Err(usage(format!("unknown command '{other}'"), USAGE, 2)),
        },
    }
}

fn parse_probes(args: &[String]) -> Result<Command, String> {
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--profile" => match rest.next() {
                Some(name) if !name.starts_with('-') => options.profile = Some(name.clone()),
                _ => return Err("--profile needs a profile name".into()),
            },
            "--check" => {
                let files: Vec<String> = rest.by_ref().cloned().collect();
                if let Some(flag) = files.iter().find(|f| f.starts_with('-')) {
                    return Err(format!(
                        "unknown flag '{flag}' (--check takes files to the end)"
                    ));
                }
                if files.is_empty() {
                    return Err("--check needs at least one file".into());
                }
                options.check = Some(files);
            }
            other => return Err(format!("unexpected '{other}'")),
        }
    }
    Ok(Command::Probes(options))
}

/// Serves until shut down, on Rocket's runtime (what `#[rocket::main]` expands to).
fn serve() -> ExitCode {
    rocket::async_main(async {
        match vitals::rocket().launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!(target: "vitals", "launch failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Command::Serve) => serve(),
        // Not on Rocket's runtime, whose end waits up to 500 ms for a blocked name lookup.
        Ok(Command::Healthcheck(url)) => vitals::healthcheck::main(url),
        Ok(Command::Probes(options)) => vitals::probes::run(options),
        Ok(Command::Help(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(Usage {
            message,
            help,
            code,
        }) => {
            // `healthcheck` speaks to `docker inspect`: its one line starts with its verdict.
            let prefix = if code == 1 { "unhealthy: " } else { "vitals: " };
            eprintln!("{prefix}{message}\n{help}");
            ExitCode::from(code)
        }
    }
}
