//! The engine's logic with fake checks and paused time: single flight, the cache, deadlines
//! whatever a check does, cancelled runs, thresholds, subscribers and the timer.

use super::*;
use crate::checks::events::{Change, Subscriber};
use crate::checks::timer::{Jitter, Timer};
use crate::checks::{Check, FnCheck, Thresholds};
use crate::redact::url_secrets;
use futures::StreamExt;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

#[test]
fn a_timeout_names_the_deadline() {
    let o = outcome(
        Err(Failure::timeout()),
        Duration::from_millis(101),
        Duration::from_millis(100),
        false,
        &Sanitiser::default(),
    );
    assert_eq!(
        (o.status, o.reason),
        (RunStatus::Timeout, Some(Reason::Timeout))
    );
    assert_eq!(o.error.as_deref(), Some("no answer within 100 ms"));
}

#[test]
fn an_error_is_sanitised() {
    let s = Sanitiser::new(url_secrets("postgres://u:pw@h/d"));
    let o = outcome(
        Err(Failure::new(Reason::Auth, "bad pw\nat postgres://u:pw@h/d")),
        Duration::from_micros(1234),
        Duration::from_secs(1),
        false,
        &s,
    );
    assert_eq!((o.status, o.reason), (RunStatus::Error, Some(Reason::Auth)));
    assert_eq!(o.error.as_deref(), Some("bad *** at postgres://u:***@h/d"));
    assert_eq!(o.duration_ms, 1.234);
}

/// A fake check that counts its runs and takes `delay` of (paused) time.
fn counting(delay: Duration, ok: bool) -> (Arc<AtomicUsize>, Arc<dyn Check>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let check = FnCheck(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            if ok {
                Ok(())
            } else {
                Err("down")
            }
        }
    });
    (runs, Arc::new(check))
}

fn engine(checks: Vec<(&str, Arc<dyn Check>)>, cache_ms: u64) -> (Health, Arc<AtomicUsize>) {
    engine_with(checks, cache_ms, Thresholds::default())
}

fn engine_with(
    checks: Vec<(&str, Arc<dyn Check>)>,
    cache_ms: u64,
    thresholds: Thresholds,
) -> (Health, Arc<AtomicUsize>) {
    let recorded = Arc::new(AtomicUsize::new(0));
    let counter = recorded.clone();
    let registry = Registry {
        checks: checks
            .into_iter()
            .map(|(name, check)| Registered {
                name: name.into(),
                check,
                timeout: Duration::from_millis(100),
                critical: true,
                thresholds,
            })
            .collect(),
    };
    let recorder: Recorder = Arc::new(move |_: &str, _: &RunOutcome, _: bool| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (Health::new(registry, cache_ms, recorder), recorded)
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_run() {
    let (runs, check) = counting(Duration::from_millis(50), true);
    let (health, recorded) = engine(vec![("a", check)], 0);
    let reports = join_all((0..10).map(|_| health.evaluate_all())).await;
    assert!(reports.iter().all(|r| r.verdict == Verdict::Ready));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(recorded.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_result_is_reused_until_cache_ms_passes() {
    let (runs, check) = counting(Duration::from_millis(1), true);
    let (health, _) = engine(vec![("a", check)], 1000);
    health.evaluate_all().await;
    tokio::time::advance(Duration::from_millis(900)).await;
    health.evaluate_all().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "reused within cache_ms");
    tokio::time::advance(Duration::from_millis(200)).await;
    health.evaluate_all().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "run again after cache_ms");
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_callers_gave_up_still_records_itself() {
    let (runs, check) = counting(Duration::from_millis(50), false);
    let (health, recorded) = engine(vec![("a", check)], 0);
    let gave_up = tokio::time::timeout(Duration::from_millis(10), health.evaluate_all()).await;
    assert!(gave_up.is_err());
    // The run goes on without any caller and completes its slot.
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(recorded.load(Ordering::SeqCst), 1);
    assert_eq!(health.history(0).runs, 1);
    assert_eq!(health.latest_verdict(), Some(Verdict::Unavailable));
    // Nothing stale is left in flight: the next caller starts a new run.
    health.evaluate_all().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_check_past_its_deadline_is_a_timeout() {
    let (_, check) = counting(Duration::from_secs(10), true);
    let (health, _) = engine(vec![("slow", check)], 0);
    let report = health.evaluate_all().await;
    let outcome = &report.entries[0].outcome;
    assert_eq!(outcome.status, RunStatus::Timeout);
    assert_eq!(outcome.error.as_deref(), Some("no answer within 100 ms"));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_an_error_and_frees_its_slot() {
    let panics: Arc<dyn Check> = Arc::new(FnCheck(|| async {
        if true {
            panic!("boom");
        }
        Ok::<(), String>(())
    }));
    let (health, recorded) = engine(vec![("p", panics)], 0);
    let report = health.evaluate_all().await;
    assert_eq!(report.entries[0].outcome.status, RunStatus::Error);
    assert_eq!(recorded.load(Ordering::SeqCst), 1);
    assert_eq!(health.evaluate_all().await.verdict, Verdict::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_in_the_checks_own_words_keeps_them() {
    let own: Arc<dyn Check> = Arc::new(FnCheck(|| async { Err::<(), _>("unused") }));
    let (health, _) = engine(vec![("a", own)], 0);
    let o = outcome(
        Err(Failure::new(Reason::Timeout, "queue did not answer")),
        Duration::from_millis(5),
        Duration::from_millis(100),
        false,
        &health.sanitiser,
    );
    assert_eq!(o.error.as_deref(), Some("queue did not answer"));
}

#[test]
fn a_run_whose_runtime_goes_away_completes_its_slot_and_the_next_probe_runs_afresh() {
    let (runs, check) = counting(Duration::from_secs(3600), true);
    let (health, recorded) = engine(vec![("a", check)], 0);
    let doomed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let health = health.spawning_on(Some(doomed.handle().clone()));
    let asking = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    // A run starts on `doomed` (never polled), then that runtime is dropped.
    asking.block_on(async {
        let _ = tokio::time::timeout(Duration::from_millis(1), health.evaluate_all()).await;
    });
    drop(doomed);
    assert_eq!(recorded.load(Ordering::SeqCst), 1, "the slot was completed");
    let history = health.history(0);
    let last = history.recent.last().expect("a run is recorded");
    assert_eq!(last.error.as_deref(), Some("the check run was cancelled"));
    // The next probe starts a run of its own instead of joining the dead one.
    let health = health.spawning_on(None);
    asking.block_on(async {
        let _ = tokio::time::timeout(Duration::from_millis(1), health.evaluate_all()).await;
    });
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "only the second run started the check"
    );
}

#[test]
fn a_check_that_blocks_its_thread_is_answered_by_the_deadline_and_runs_once() {
    let blocking: Arc<dyn Check> = Arc::new(FnCheck(|| async {
        std::thread::sleep(Duration::from_millis(400));
        Ok::<(), String>(())
    }));
    let (health, recorded) = engine(vec![("b", blocking)], 0);
    let checks = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let health = health.spawning_on(Some(checks.handle().clone()));
    let asking = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    asking.block_on(async {
        let asked = std::time::Instant::now();
        let report = health.evaluate_all().await;
        let took = asked.elapsed();
        let first = &report.entries[0].outcome;
        assert_eq!(first.status, RunStatus::Timeout);
        assert!(took < Duration::from_millis(300), "answered after {took:?}");
        assert_eq!(health.overdue().len(), 1, "the stuck run is overdue");
        // Its missed deadline counted as a failed run, the first one setting the state.
        assert_eq!(recorded.load(Ordering::SeqCst), 1);
        assert!(!first.passing);
        // A second caller joins the stuck run: still one run, still a timeout.
        let again = health.evaluate_all().await;
        assert_eq!(again.entries[0].outcome.status, RunStatus::Timeout);
    });
    assert_eq!(health.history(0).runs, 0, "the run has not ended");
    // When it does end, it ended too late to count as ok.
    checks.block_on(async {
        while health.history(0).runs == 0 {
            tokio::task::yield_now().await;
        }
    });
    let history = health.history(0);
    assert_eq!(history.recent.last().unwrap().status, RunStatus::Timeout);
    assert!(health.overdue().is_empty());
}

#[tokio::test(start_paused = true)]
async fn check_once_reports_a_panic_and_a_deadline() {
    let panics = FnCheck(|| async {
        if true {
            panic!("boom");
        }
        Ok::<(), String>(())
    });
    let failed = check_once(&panics, Duration::from_millis(10)).await;
    assert_eq!(failed.unwrap_err().text(), "the check panicked: boom");
    let (_, slow) = counting(Duration::from_secs(10), true);
    let failed = check_once(&*slow, Duration::from_millis(10)).await;
    assert_eq!(failed.unwrap_err().reason(), Reason::Timeout);
}

/// A check whose runs follow `script` (true: ok), then pass.
fn scripted(script: &'static [bool]) -> Arc<dyn Check> {
    let next = Arc::new(AtomicUsize::new(0));
    Arc::new(FnCheck(move || {
        let run = next.fetch_add(1, Ordering::SeqCst);
        async move {
            match script.get(run).copied().unwrap_or(true) {
                true => Ok(()),
                false => Err("down"),
            }
        }
    }))
}

#[tokio::test(start_paused = true)]
async fn with_fail_after_three_two_failures_keep_it_ready_and_a_third_makes_it_unavailable() {
    let three = Thresholds {
        fail_after: 3,
        pass_after: 1,
    };
    let check = scripted(&[true, false, false, true, false, false, false]);
    let (health, _) = engine_with(vec![("flaky", check)], 0, three);
    let verdicts: Vec<Verdict> = futures::stream::iter(0..7)
        .then(|_| health.evaluate_all())
        .map(|r| r.verdict)
        .collect()
        .await;
    use Verdict::{Ready, Unavailable};
    assert_eq!(
        verdicts,
        [Ready, Ready, Ready, Ready, Ready, Ready, Unavailable]
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_run_shows_its_own_status_and_the_runs_left() {
    let three = Thresholds {
        fail_after: 3,
        pass_after: 1,
    };
    let (health, _) = engine_with(vec![("flaky", scripted(&[true, false]))], 0, three);
    health.evaluate_all().await;
    let report = health.evaluate_all().await;
    let o = &report.entries[0].outcome;
    assert_eq!(
        (o.status, o.passing, o.held),
        (RunStatus::Error, true, Some(2))
    );
    let json = rocket::serde::json::to_string(&report).unwrap();
    assert!(
        json.contains(r#""held":{"status":"passing","runs_left":2}"#),
        "{json}"
    );
}

#[tokio::test(start_paused = true)]
async fn subscribers_hear_of_changes_and_a_slow_or_panicking_one_breaks_nothing() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let listening: Subscriber = Arc::new(move |change: Change| {
        let log = log.clone();
        Box::pin(async move { log.lock().unwrap().push(change) })
    });
    let slow: Subscriber = Arc::new(|_| Box::pin(tokio::time::sleep(Duration::from_secs(3600))));
    let panicking: Subscriber = Arc::new(|_| Box::pin(async { panic!("subscriber") }));
    let (health, _) = engine(vec![("a", scripted(&[true, false, true]))], 0);
    let health = health.telling(vec![slow, panicking, listening]);
    for _ in 0..3 {
        let report = tokio::time::timeout(Duration::from_secs(1), health.evaluate_all()).await;
        assert!(report.is_ok(), "a subscriber held an evaluation up");
    }
    // Let the subscribers' tasks run.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let heard = heard.lock().unwrap().clone();
    let said: Vec<(Option<&str>, &str, &str)> = heard
        .iter()
        .map(|c| (c.check.as_deref(), c.from, c.to))
        .collect();
    assert_eq!(
        said,
        [
            (Some("a"), "passing", "failing"),
            (None, "ready", "unavailable"),
            (Some("a"), "failing", "passing"),
            (None, "unavailable", "ready"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_runs_of_several_checks_are_no_change() {
    let heard = Arc::new(AtomicUsize::new(0));
    let count = heard.clone();
    let listening: Subscriber = Arc::new(move |_: Change| {
        count.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    });
    let (_, a) = counting(Duration::from_millis(1), true);
    let (_, b) = counting(Duration::from_millis(5), true);
    let (health, _) = engine(vec![("a", a), ("b", b)], 0);
    let health = health.telling(vec![listening]);
    assert_eq!(health.evaluate_all().await.verdict, Verdict::Ready);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        heard.load(Ordering::SeqCst),
        0,
        "a start-up was told as a change"
    );
}

#[tokio::test(start_paused = true)]
async fn on_a_timer_probes_answer_from_the_latest_result_and_it_goes_stale() {
    let (runs, check) = counting(Duration::from_millis(1), true);
    let (health, _) = engine(vec![("a", check)], 0);
    let timer = Timer {
        interval: Duration::from_millis(1000),
        max_age: Duration::from_millis(3000),
    };
    let health = health.on_timer(Some(timer));
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = stopped.clone();
    health.start_timers(Arc::new(move || stop.load(Ordering::SeqCst)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the timer ran the check once"
    );
    // Probes do not run the check: they read the latest result.
    for _ in 0..5 {
        assert_eq!(health.evaluate_all().await.verdict, Verdict::Ready);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(runs.load(Ordering::SeqCst) >= 3, "the timer keeps running");
    // The drain stops the timer; the result then ages past max_age.
    stopped.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let report = health.evaluate_all().await;
    let o = &report.entries[0].outcome;
    assert_eq!(
        (report.verdict, o.reason),
        (Verdict::Unavailable, Some(Reason::Stale))
    );
}

#[test]
fn jitter_stays_within_a_tenth_of_the_interval() {
    let mut jitter = Jitter::seeded(3);
    let interval = Duration::from_millis(1000);
    let spread: Vec<Duration> = (0..200).map(|_| jitter.around(interval)).collect();
    assert!(spread
        .iter()
        .all(|d| *d >= interval * 9 / 10 && *d <= interval * 11 / 10));
    assert!(spread.iter().any(|d| *d != spread[0]), "no jitter at all");
}

#[tokio::test(start_paused = true)]
async fn only_a_full_passing_evaluation_completes_startup() {
    let (_, a) = counting(Duration::ZERO, true);
    let (_, b) = counting(Duration::ZERO, true);
    let (health, _) = engine(vec![("a", a), ("b", b)], 0);
    health.evaluate(&[0]).await;
    assert!(!health.is_started());
    health.evaluate_all().await;
    assert!(health.is_started());
}

/// A check whose first run passes and whose later runs block their thread for `block`.
fn passes_then_blocks(block: Duration) -> Arc<dyn Check> {
    let next = Arc::new(AtomicUsize::new(0));
    Arc::new(FnCheck(move || {
        let run = next.fetch_add(1, Ordering::SeqCst);
        async move {
            if run > 0 {
                std::thread::sleep(block);
            }
            Ok::<(), String>(())
        }
    }))
}

#[test]
fn a_wedged_check_is_failing_after_fail_after_missed_deadlines_and_says_why() {
    let three = Thresholds {
        fail_after: 3,
        pass_after: 1,
    };
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let listening: Subscriber = Arc::new(move |change: Change| {
        let log = log.clone();
        Box::pin(async move { log.lock().unwrap().push((change.check, change.to)) })
    });
    let check = passes_then_blocks(Duration::from_millis(900));
    let (health, _) = engine_with(vec![("x", check)], 0, three);
    let health = health.isolated(None).telling(vec![listening]);
    let asking = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    asking.block_on(async {
        assert_eq!(health.evaluate_all().await.verdict, Verdict::Ready);
        let first = health.evaluate_all().await;
        let o = &first.entries[0].outcome;
        // One deadline missed: held passing, two runs left, and the text says so.
        assert_eq!(
            (o.status, o.passing, o.held),
            (RunStatus::Timeout, true, Some(2))
        );
        assert!(
            o.error
                .as_deref()
                .unwrap()
                .contains("counted as 1 of the 3"),
            "{:?}",
            o.error
        );
        let asked = std::time::Instant::now();
        // Each later caller sees the deadlines missed so far, until the third.
        let failing = loop {
            let report = health.evaluate_all().await;
            if !report.entries[0].outcome.passing {
                break report;
            }
            tokio::task::yield_now().await;
        };
        assert!(
            asked.elapsed() < Duration::from_millis(600),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(failing.verdict, Verdict::Unavailable);
        let o = &failing.entries[0].outcome;
        assert!(
            o.error
                .as_deref()
                .unwrap()
                .contains("counted as 3 of the 3"),
            "{:?}",
            o.error
        );
        // Metrics and the page read it the same way, without running anything.
        assert_eq!(health.latest_verdict(), Some(Verdict::Unavailable));
        // The subscribers heard of it as of any change.
        while heard.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(
        heard.lock().unwrap()[..2],
        [(Some("x".to_owned()), "failing"), (None, "unavailable")]
    );
}

#[test]
fn time_spent_waiting_for_a_thread_is_not_the_dependencys_failure() {
    let (runs, check) = counting(Duration::from_millis(1), true);
    let (health, _) = engine(vec![("a", check)], 0);
    // The runs' one thread is busy for 300 ms, three deadlines of the check.
    let busy = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel();
    busy.spawn(async move {
        blocked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    blocked_rx.recv().unwrap();
    let health = health.spawning_on(Some(busy.handle().clone()));
    let asking = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    asking.block_on(async {
        let report = health.evaluate_all().await;
        let o = &report.entries[0].outcome;
        assert_eq!(o.status, RunStatus::Timeout);
        assert!(o.error.as_deref().unwrap().contains("waited for a thread"));
        // Nothing was counted: the check has no counted state yet, and its run is waiting.
        assert_eq!(health.slots[0].counted(), None);
        while health.history(0).runs == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // Once it had its thread, the run passed, and that is what counts.
    let history = health.history(0);
    assert_eq!(history.recent.last().unwrap().status, RunStatus::Ok);
    assert_eq!(health.slots[0].counted(), Some(true));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_blocking_subscriber_delays_no_check() {
    let blocking: Subscriber = Arc::new(|_| {
        std::thread::sleep(Duration::from_millis(500));
        Box::pin(async {})
    });
    let (health, _) = engine(
        vec![("a", scripted(&[true, false, true, false, true, false]))],
        0,
    );
    let health = health.isolated(None).telling(vec![blocking]);
    let asking = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    asking.block_on(async {
        // Each run after the first is a change, told to the subscriber that blocks.
        for _ in 0..6 {
            let report = health.evaluate_all().await;
            let o = &report.entries[0].outcome;
            assert_ne!(o.status, RunStatus::Timeout, "{:?}", o.error);
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_stale_result_is_a_counted_failure_told_once_per_max_age() {
    let heard = Arc::new(AtomicUsize::new(0));
    let count = heard.clone();
    let listening: Subscriber = Arc::new(move |_: Change| {
        count.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    });
    let (_, check) = counting(Duration::from_millis(1), true);
    let changed = Arc::new(AtomicUsize::new(0));
    let (health, _) = engine(vec![("a", check)], 0);
    let health = Health {
        recorder: {
            let changed = changed.clone();
            Arc::new(move |_: &str, _: &RunOutcome, change: bool| {
                changed.fetch_add(usize::from(change), Ordering::SeqCst);
            })
        },
        ..health
    };
    let timer = Timer {
        interval: Duration::from_millis(1000),
        max_age: Duration::from_millis(1500),
    };
    let health = health.on_timer(Some(timer)).telling(vec![listening]);
    health.run_now_for_tests(0).await;
    assert_eq!(health.latest_verdict(), Some(Verdict::Ready));
    tokio::time::advance(Duration::from_millis(1600)).await;
    // A scrape sees what a probe would: stale, counted, one change told.
    assert_eq!(health.latest_verdict(), Some(Verdict::Unavailable));
    let o = &health.evaluate_all().await.entries[0].outcome;
    assert_eq!((o.reason, o.passing), (Some(Reason::Stale), false));
    assert_eq!(changed.load(Ordering::SeqCst), 1, "one transition recorded");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        heard.load(Ordering::SeqCst),
        2,
        "the check's change and the verdict's"
    );
    // A fresh result ends it, as a change of its own.
    health.run_now_for_tests(0).await;
    assert_eq!(health.latest_verdict(), Some(Verdict::Ready));
    assert_eq!(changed.load(Ordering::SeqCst), 2);
}

#[test]
fn a_flapping_check_keeps_a_bounded_count_of_changes() {
    let slot = Slot::default();
    let t = Thresholds::default();
    let mut ok = true;
    for _ in 0..(crate::checks::slot::CHANGES_KEPT * 2) {
        let mut o = cancelled(String::new());
        o.status = if ok { RunStatus::Ok } else { RunStatus::Error };
        slot.complete(o, t);
        ok = !ok;
    }
    assert!(slot.history().changes_last_hour <= crate::checks::slot::CHANGES_KEPT);
}

#[tokio::test(start_paused = true)]
async fn the_timer_ticks_at_a_fixed_rate_whatever_a_run_takes() {
    // Each run takes half an interval (within its 100 ms deadline): a timer that slept an
    // interval after each run would run every 150 ms; at a fixed rate it runs every 100 ms.
    let (runs, check) = counting(Duration::from_millis(50), true);
    let (health, _) = engine(vec![("a", check)], 0);
    let timer = Timer {
        interval: Duration::from_millis(100),
        max_age: Duration::from_millis(300),
    };
    let health = health.on_timer(Some(timer));
    health.start_timers(Arc::new(|| false));
    tokio::time::sleep(Duration::from_millis(2_005)).await;
    let n = runs.load(Ordering::SeqCst);
    // The first at once, then one per interval from a start jittered by a tenth: 20 or 21.
    assert!((20..=21).contains(&n), "{n} runs in 2 s");
    health.halt();
}
