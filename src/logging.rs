//! The process logger: readable text lines in `debug`, JSON lines in `release`.
//!
//! Rocket 0.5 logs through `log` and uses a logger installed before launch instead of its own,
//! so this one also carries Rocket's records. It honours `log_level` (`ROCKET_LOG_LEVEL`) and
//! drops Rocket's per-request chatter: `fairings::RequestLogger` writes one line per vitals
//! request instead. Every line hides the secrets the process registered (`redact::register`),
//! and sqlx's complaint about a connect parameter it does not know never shows the value.

use std::io::Write as _;
use std::time::SystemTime;

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use rocket::config::LogLevel;
use rocket::figment::Figment;
use serde_json::{Map, Value as Json};
use time::format_description::well_known::{iso8601, Iso8601};
use time::OffsetDateTime;

/// How each record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `LEVEL target: message`, for people at a terminal.
    Text,
    /// One JSON object per line with `ts`, `level`, `target`, `msg` and the record's fields.
    Json,
}

/// Installs the logger for `figment`'s profile and log level. Does nothing if a logger is
/// already installed (tests install their own).
pub fn init(figment: &Figment) {
    // A bad Rocket configuration is reported when Rocket reads it; the logger takes defaults.
    let config: rocket::Config = figment.extract().unwrap_or_default();
    let format = if figment.profile() == rocket::Config::RELEASE_PROFILE {
        Format::Json
    } else {
        Format::Text
    };
    let level = match config.log_level {
        LogLevel::Critical => LevelFilter::Warn,
        LogLevel::Normal => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Trace,
        LogLevel::Off => LevelFilter::Off,
    };
    if log::set_boxed_logger(Box::new(Logger { format, level })).is_ok() {
        log::set_max_level(level);
    }
}

struct Logger {
    format: Format,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || is_chatter(record, self.level) {
            return;
        }
        let mut line = format_record(self.format, record, SystemTime::now());
        line.push('\n');
        // A closed stdout must not take the service down with it.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Records not worth a line below debug level: Rocket's per-request trace (replaced by one
/// line from `fairings::RequestLogger`), its complaint about every unmatched path (a scanner
/// would fill the log with errors; `RequestLogger` still logs each 404 of vitals), and HTTP and
/// pool internals.
fn is_chatter(record: &Record<'_>, level: LevelFilter) -> bool {
    if level >= LevelFilter::Debug {
        return false;
    }
    let from = |prefix: &str| record.target().starts_with(prefix);
    if from("rocket::server") && record.level() <= log::Level::Warn {
        let text = record.args().to_string();
        return text.starts_with("No matching routes") || text.starts_with("Responding with");
    }
    record.level() > log::Level::Warn
        && (from("rocket::server") || from("_") || from("hyper") || from("sqlx") || from("tracing"))
}

/// The record's message as it may be written: without registered secrets and, from sqlx's URL
/// parser ("ignoring unrecognized connect parameter key=... value=..."), without the value,
/// which may be a credential under a misspelt or unsupported key (libpq's `sslpassword`).
fn message(record: &Record<'_>) -> String {
    let mut text = record.args().to_string();
    if record.target().starts_with("sqlx") {
        if let Some(at) = text.find("value=") {
            text.replace_range(at + "value=".len().., "***");
        }
    }
    crate::redact::hide_registered(&text)
}

/// Formats one record, without the trailing newline.
pub fn format_record(format: Format, record: &Record<'_>, now: SystemTime) -> String {
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    match format {
        Format::Text => {
            let mut line = format!(
                "{:<5} {}: {}",
                record.level(),
                record.target(),
                message(record)
            );
            // Rocket marks sub-items with a trailing "_" in the target; its text says enough.
            line = line.replace("::_:", ":");
            line
        }
        Format::Json => {
            let mut line = Map::new();
            line.insert("ts".into(), rfc3339(now).into());
            line.insert(
                "level".into(),
                record.level().as_str().to_lowercase().into(),
            );
            let target = record.target().trim_end_matches("::_");
            line.insert("target".into(), target.into());
            line.insert("msg".into(), message(record).into());
            line.extend(fields.0);
            Json::Object(line).to_string()
        }
    }
}

/// The record's key-values as JSON values.
struct Fields(Vec<(String, Json)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            x.into()
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else {
            crate::redact::hide_registered(&value.to_string()).into()
        };
        self.0.push((key.as_str().to_owned(), json));
        Ok(())
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-28T01:02:03.456Z`.
const RFC3339_MS: iso8601::EncodedConfig = iso8601::Config::DEFAULT
    .set_time_precision(iso8601::TimePrecision::Second {
        decimal_digits: std::num::NonZeroU8::new(3),
    })
    .encode();

/// `time` as RFC 3339 UTC with milliseconds, e.g. `2026-11-28T01:02:03.456Z`.
pub fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Iso8601::<RFC3339_MS>)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn with_record<R>(f: impl FnOnce(&Record<'_>) -> R) -> R {
        let kvs: [(&str, Value<'_>); 3] = [
            ("check", Value::from("database")),
            ("duration_ms", Value::from(1.5f64)),
            ("status", Value::from("timeout")),
        ];
        let record = Record::builder()
            .level(log::Level::Info)
            .target("vitals::check")
            .args(format_args!("check \"database\"\ntimeout"))
            .key_values(&kvs)
            .build();
        f(&record)
    }

    #[test]
    fn json_lines_carry_fields_and_escape_the_message() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_827_723_456);
        let line = with_record(|r| format_record(Format::Json, r, at));
        assert_eq!(
            line,
            r#"{"ts":"2026-11-28T01:02:03.456Z","level":"info","target":"vitals::check","msg":"check \"database\"\ntimeout","check":"database","duration_ms":1.5,"status":"timeout"}"#
        );
    }

    #[test]
    fn text_lines_are_level_target_message() {
        let line = with_record(|r| format_record(Format::Text, r, UNIX_EPOCH));
        assert_eq!(line, "INFO  vitals::check: check \"database\"\ntimeout");
    }

    #[test]
    fn sqlx_never_logs_the_value_of_a_parameter_it_ignores() {
        let record = Record::builder()
            .level(log::Level::Warn)
            .target("sqlx_postgres::options::parse")
            .args(format_args!(
                "ignoring unrecognized connect parameter key=sslpassword value=KeyPass123"
            ))
            .build();
        for format in [Format::Text, Format::Json] {
            let line = format_record(format, &record, UNIX_EPOCH);
            assert!(!line.contains("KeyPass123"), "{line}");
            assert!(line.contains("key=sslpassword value=***"), "{line}");
        }
    }

    #[test]
    fn a_registered_secret_is_hidden_in_the_message_and_the_fields() {
        crate::redact::register(["Logged-9a4f".to_owned()]);
        let kvs: [(&str, Value<'_>); 1] = [("error", Value::from("auth Logged-9a4f"))];
        let record = Record::builder()
            .level(log::Level::Info)
            .target("vitals::check")
            .args(format_args!("check x error: Logged-9a4f"))
            .key_values(&kvs)
            .build();
        for format in [Format::Text, Format::Json] {
            let line = format_record(format, &record, UNIX_EPOCH);
            assert!(!line.contains("Logged-9a4f"), "{line}");
        }
    }

    #[test]
    fn dates_follow_the_civil_calendar() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
