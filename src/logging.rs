//! The process logger: readable text lines in `debug`, JSON lines in `release`.
//!
//! Rocket 0.5 logs through `log` and uses a logger installed before launch instead of its own,
//! so this one also carries Rocket's records. It honours `log_level` (`ROCKET_LOG_LEVEL`) and
//! drops Rocket's per-request chatter: `CheckLogger` writes one line per request instead.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use rocket::config::LogLevel;
use rocket::figment::Figment;

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
    let config = rocket::Config::from(figment);
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
/// line from `CheckLogger`), its complaint about every unmatched path (a scanner would fill
/// the log with errors; `CheckLogger` still logs each 404), and HTTP and pool internals.
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
                record.args()
            );
            // Rocket marks sub-items with a trailing "_" in the target; its text says enough.
            line = line.replace("::_:", ":");
            line
        }
        Format::Json => {
            let mut line = String::with_capacity(160);
            line.push_str("{\"ts\":\"");
            line.push_str(&rfc3339(now));
            line.push_str("\",\"level\":\"");
            line.push_str(&record.level().as_str().to_lowercase());
            line.push_str("\",\"target\":");
            push_json_str(&mut line, record.target().trim_end_matches("::_"));
            line.push_str(",\"msg\":");
            push_json_str(&mut line, &record.args().to_string());
            for (key, value) in &fields.0 {
                line.push(',');
                push_json_str(&mut line, key);
                line.push(':');
                line.push_str(value);
            }
            line.push('}');
            line
        }
    }
}

/// The record's key-values, each value already JSON-encoded.
struct Fields(Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let encoded = if let Some(n) = value.to_u64() {
            n.to_string()
        } else if let Some(n) = value.to_i64() {
            n.to_string()
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            format!("{x}")
        } else if let Some(b) = value.to_bool() {
            b.to_string()
        } else {
            let mut s = String::new();
            push_json_str(&mut s, &value.to_string());
            s
        };
        self.0.push((key.as_str().to_owned(), encoded));
        Ok(())
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `time` as RFC 3339 UTC with milliseconds, e.g. `2026-11-28T01:02:03.456Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn dates_follow_the_civil_calendar() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
