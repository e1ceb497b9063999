//! Settings: defaults, validation, profiles from the shipped Rocket.toml, environment
//! overrides.

use super::*;
use proptest::strategy::Strategy;

fn settings(pairs: &[(&str, i64)]) -> Result<Settings, String> {
    let figment = pairs
        .iter()
        .fold(Figment::new(), |f, (k, v)| f.merge((*k, *v)));
    Settings::from_figment(&figment)
}

#[test]
fn defaults_apply_when_the_table_is_missing() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.health, HealthSettings::default());
    assert_eq!(s.health.timeout_ms("redis"), 1000);
    assert!(s.health.is_critical("database"));
    assert!(s.health.is_enabled("redis"));
}

#[test]
fn a_check_timeout_overrides_the_global_one() {
    let s = settings(&[
        ("health.timeout_ms", 300),
        ("health.checks.redis.timeout_ms", 50),
    ])
    .unwrap();
    assert_eq!(s.health.timeout_ms("redis"), 50);
    assert_eq!(s.health.timeout_ms("database"), 300);
}

#[test]
fn a_zero_timeout_is_refused_with_its_key() {
    let err = settings(&[("health.timeout_ms", 0)]).unwrap_err();
    assert!(err.contains("health.timeout_ms"), "{err}");
}

#[test]
fn a_zero_connect_timeout_is_refused_naming_its_table() {
    let err = settings(&[("databases.orders.connect_timeout", 0)]).unwrap_err();
    assert!(
        err.starts_with("databases.orders.connect_timeout = 0: must be at least 1"),
        "{err}"
    );
    assert!(settings(&[("databases.orders.connect_timeout", 1)]).is_ok());
}

#[test]
fn a_negative_value_is_refused_with_its_key() {
    let err = settings(&[("health.cache_ms", -5)]).unwrap_err();
    assert!(err.contains("cache_ms"), "{err}");
}

#[test]
fn a_declaration_loads_its_kind_keys() {
    let figment = Figment::new()
        .merge(("health.checks.queue.kind", "tcp"))
        .merge(("health.checks.queue.address", "127.0.0.1:5672"));
    let s = Settings::from_figment(&figment).unwrap();
    let queue = &s.health.checks["queue"];
    assert_eq!(queue.kind.as_deref(), Some("tcp"));
    assert_eq!(queue.kind_keys().collect::<Vec<_>>(), ["address"]);
}

/// The shipped Rocket.toml, laid into each jail.
const ROCKET_TOML: &str = include_str!("../../Rocket.toml");

fn jailed<T>(f: impl FnOnce(&mut figment::Jail) -> figment::error::Result<T>) {
    figment::Jail::expect_with(|jail| {
        jail.create_file("Rocket.toml", ROCKET_TOML)?;
        f(jail).map(drop)
    });
}

#[test]
fn debug_profile_values_come_from_rocket_toml() {
    jailed(|jail| {
        jail.set_env("ROCKET_PROFILE", "debug");
        let h = Settings::from_figment(&figment()).unwrap().health;
        assert_eq!((h.timeout_ms, h.cache_ms, h.drain_ms), (2000, 0, 0));
        Ok(())
    });
}

#[test]
fn release_profile_values_come_from_rocket_toml() {
    jailed(|jail| {
        jail.set_env("ROCKET_PROFILE", "release");
        let h = Settings::from_figment(&figment()).unwrap().health;
        assert_eq!((h.timeout_ms, h.cache_ms, h.drain_ms), (800, 1000, 5000));
        assert!(h.checks.is_empty());
        Ok(())
    });
}

#[test]
fn database_url_and_redis_url_override_every_profile() {
    jailed(|jail| {
        jail.create_file(
            "Rocket.toml",
            &format!(
                "{ROCKET_TOML}\n[release.databases.postgres]\nurl = \"postgres://file@h/r\"\n"
            ),
        )?;
        jail.set_env("ROCKET_PROFILE", "release");
        jail.set_env("DATABASE_URL", "postgres://env@db:5432/app");
        jail.set_env("REDIS_URL", "redis://cache:6380/1");
        let f = figment();
        let pg: String = f.extract_inner("databases.postgres.url")?;
        let redis: String = f.extract_inner("databases.redis.url")?;
        assert_eq!(pg, "postgres://env@db:5432/app");
        assert_eq!(redis, "redis://cache:6380/1");
        // The rest of the pool table still comes from the file.
        let max: u32 = f.extract_inner("databases.postgres.max_connections")?;
        assert_eq!(max, 1);
        Ok(())
    });
}

#[test]
fn a_check_declared_in_the_environment_loads() {
    jailed(|jail| {
        jail.set_env(
            "ROCKET_HEALTH",
            r#"{checks={payments={kind="http",url="http://127.0.0.1:9000/health/ready",critical=false}}}"#,
        );
        let h = Settings::from_figment(&figment()).unwrap().health;
        let payments = &h.checks["payments"];
        assert_eq!(payments.kind.as_deref(), Some("http"));
        assert_eq!(
            payments.url.as_deref(),
            Some("http://127.0.0.1:9000/health/ready")
        );
        assert!(!h.is_critical("payments"));
        assert_eq!(h.timeout_ms, 2000, "the file's other values stay");
        Ok(())
    });
}

#[test]
fn rocket_health_env_changes_only_the_named_keys() {
    jailed(|jail| {
        jail.set_env("ROCKET_PROFILE", "release");
        jail.set_env(
            "ROCKET_HEALTH",
            "{timeout_ms=200,checks={redis={critical=false}}}",
        );
        let h = Settings::from_figment(&figment()).unwrap().health;
        assert_eq!((h.timeout_ms, h.cache_ms, h.drain_ms), (200, 1000, 5000));
        assert!(!h.is_critical("redis"));
        assert!(h.is_critical("database"));
        Ok(())
    });
}

proptest::proptest! {
    /// Whatever the `health` table holds, loading either succeeds with sane deadlines or
    /// fails with a message naming a health key; it never panics.
    #[test]
    fn any_health_table_loads_sanely_or_names_its_key(
        entries in proptest::collection::vec(
            (
                proptest::sample::select(&[
                    "health.timeout_ms", "health.cache_ms", "health.drain_ms",
                    "health.checks.database.timeout_ms", "health.checks.redis.critical",
                    "health.checks.redis.timeout_ms", "health.checks.mongo.critical",
                    "health.checks.database.nope", "health.timeout",
                ][..]),
                proptest::prop_oneof![
                    proptest::prelude::any::<i64>().prop_map(figment::value::Value::from),
                    (0u64..120_000).prop_map(figment::value::Value::from),
                    proptest::prelude::any::<bool>().prop_map(figment::value::Value::from),
                    "[ -~]{0,8}".prop_map(figment::value::Value::from),
                ],
            ),
            0..6,
        )
    ) {
        let figment = entries.iter().fold(Figment::new(), |f, (k, v)| f.merge((*k, v.clone())));
        match Settings::from_figment(&figment) {
            Ok(s) => {
                let h = s.health;
                for check in ["database", "redis", "mongo"] {
                    proptest::prop_assert!((1..=MAX_TIMEOUT_MS).contains(&h.timeout_ms(check)));
                }
            }
            Err(message) => proptest::prop_assert!(message.contains("health"), "{}", message),
        }
    }
}

#[test]
fn a_misspelt_key_is_refused() {
    let err = settings(&[("health.timeout", 10)]).unwrap_err();
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn every_limit_of_the_contract_stops_launch_naming_its_key() {
    let refused: &[(&[(&str, i64)], &str)] = &[
        (&[("health.cache_ms", 60_001)], "health.cache_ms = 60001"),
        (&[("health.drain_ms", 300_001)], "health.drain_ms = 300001"),
        (&[("health.fail_after", 101)], "health.fail_after = 101"),
        (&[("health.pass_after", 0)], "health.pass_after = 0"),
        (
            &[("health.checks.redis.fail_after", 4_294_967_295)],
            "health.checks.redis.fail_after = 4294967295",
        ),
        (
            &[("health.checks.redis.pass_after", 0)],
            "health.checks.redis.pass_after",
        ),
        (&[("health.port", 0)], "health.port = 0"),
        (&[("health.interval_ms", 99)], "health.interval_ms = 99"),
        (&[("health.stall_ms", 499)], "health.stall_ms = 499"),
        (
            &[("health.timeout_ms", 60_001)],
            "health.timeout_ms = 60001",
        ),
        (
            // 1.1 x 1000 + the largest deadline (this check's 500) is 1600.
            &[
                ("health.interval_ms", 1000),
                ("health.timeout_ms", 100),
                ("health.checks.redis.timeout_ms", 500),
                ("health.max_age_ms", 1599),
            ],
            "health.max_age_ms = 1599: must be at least 1600 ms",
        ),
    ];
    for (pairs, key) in refused {
        let err = settings(pairs).unwrap_err();
        assert!(err.contains(key), "{pairs:?}: {err}");
    }
    let accepted: &[&[(&str, i64)]] = &[
        &[("health.cache_ms", 60_000), ("health.drain_ms", 300_000)],
        &[("health.fail_after", 100), ("health.pass_after", 100)],
        &[("health.port", 65_535)],
        &[
            ("health.interval_ms", 1000),
            ("health.timeout_ms", 100),
            ("health.checks.redis.timeout_ms", 500),
            ("health.max_age_ms", 1600),
        ],
    ];
    for pairs in accepted {
        assert!(settings(pairs).is_ok(), "{pairs:?}: {:?}", settings(pairs));
    }
}

#[test]
fn an_empty_expect_list_is_refused() {
    let figment = Figment::new()
        .merge(("health.checks.api.kind", "http"))
        .merge(("health.checks.api.url", "http://127.0.0.1:1/health"))
        .merge(("health.checks.api.expect", Vec::<u16>::new()));
    let err = Settings::from_figment(&figment).unwrap_err();
    assert!(err.contains("health.checks.api.expect = []"), "{err}");
}

#[test]
fn the_default_max_age_outlasts_the_largest_deadline() {
    let s = settings(&[
        ("health.interval_ms", 1000),
        ("health.timeout_ms", 100),
        ("health.checks.slow.timeout_ms", 5000),
    ])
    .unwrap();
    let timer = s.health.timer().unwrap();
    assert_eq!(timer.max_age, std::time::Duration::from_millis(8000));
}
