//! No URL password in any body or log line, whatever the dependency says back.

use rocket::http::Status;

use crate::helpers::*;

fn assert_nowhere(secret: &str, body: &str) {
    assert!(!body.contains(secret), "body leaks the password: {body}");
    let leaks: Vec<_> = logs().into_iter().filter(|l| l.contains(secret)).collect();
    assert!(leaks.is_empty(), "log leaks the password: {leaks:?}");
}

#[rocket::async_test]
async fn a_postgres_password_is_not_shown_when_the_port_is_closed() {
    let secret = "Pw-closed-7f3a";
    let url = format!(
        "postgres://postgres:{secret}@127.0.0.1:{}/postgres",
        closed_port().await
    );
    let app = spawn_app([("databases.postgres.url", val(url))]).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("database"), "error");
    assert_nowhere(secret, &answer.json.to_string());
}

#[rocket::async_test]
async fn a_postgres_password_echoed_back_by_the_server_is_masked() {
    // Trust auth accepts any password; the server then names the missing database, which here
    // is the password itself.
    let secret = "Pw-echo-91c2";
    let url = format!("postgres://postgres:{secret}@127.0.0.1:5432/{secret}");
    let app = spawn_app([("databases.postgres.url", val(url))]).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.status, Status::ServiceUnavailable);
    let error = answer.check("database")["error"].as_str().unwrap();
    assert!(error.contains("does not exist"), "{error}");
    assert_nowhere(secret, &answer.json.to_string());
}

#[rocket::async_test]
async fn a_redis_password_refused_by_the_server_is_not_shown() {
    let secret = "Pw-redis-4d8e";
    let url = format!("redis://:{secret}@127.0.0.1:6379");
    let app = spawn_app([("databases.redis.url", val(url))]).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("redis"), "error");
    assert_nowhere(secret, &answer.json.to_string());
}

#[rocket::async_test]
async fn a_percent_encoded_password_is_masked_in_both_forms() {
    let (raw, decoded) = ("Pw%2Fenc-55", "Pw/enc-55");
    let url = format!("postgres://postgres:{raw}@127.0.0.1:5432/{raw}");
    let app = spawn_app([("databases.postgres.url", val(url))]).await;
    let answer = app.get_ready().await;
    assert_eq!(answer.check_status("database"), "error");
    assert_nowhere(decoded, &answer.json.to_string());
    assert_nowhere(raw, &answer.json.to_string());
}
