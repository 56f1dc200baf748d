//! Tests of bearer-token authentication and the token file.

use super::*;
use axum::http::HeaderValue;

const FILE: &str = "# operators\nalice:aaaaaaaaaaaaaaaaaaaa\n\n  grafana:rrrrrrrrrrrrrrrrrrrr:read \n";

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

#[test]
fn a_write_token_writes_and_names_its_author() {
    let auth = Auth::from_text(FILE, false).unwrap();
    let caller = auth.check_write(&bearer("aaaaaaaaaaaaaaaaaaaa")).unwrap();
    assert_eq!(caller, Caller { name: "alice".into(), role: Role::Write });
}

#[test]
fn a_read_token_cannot_write() {
    let auth = Auth::from_text(FILE, true).unwrap();
    assert_eq!(auth.check_write(&bearer("rrrrrrrrrrrrrrrrrrrr")).unwrap_err().status, StatusCode::FORBIDDEN);
    assert!(auth.check_read(&bearer("rrrrrrrrrrrrrrrrrrrr")).is_ok());
}

#[test]
fn missing_or_wrong_tokens_are_unauthorized() {
    let auth = Auth::from_text(FILE, true).unwrap();
    assert_eq!(auth.check_write(&HeaderMap::new()).unwrap_err().status, StatusCode::UNAUTHORIZED);
    assert_eq!(auth.check_write(&bearer("aaaaaaaaaaaaaaaaaaab")).unwrap_err().status, StatusCode::UNAUTHORIZED);
    assert_eq!(auth.check_read(&bearer("short")).unwrap_err().status, StatusCode::UNAUTHORIZED);
    let mut basic = HeaderMap::new();
    basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWxpY2U6eA=="));
    assert_eq!(auth.check_write(&basic).unwrap_err().status, StatusCode::UNAUTHORIZED);
}

#[test]
fn without_a_token_file_reads_are_open_and_writes_forbidden() {
    let auth = Auth::without_tokens();
    assert!(auth.check_read(&HeaderMap::new()).is_ok());
    let err = auth.check_write(&bearer("aaaaaaaaaaaaaaaaaaaa")).unwrap_err();
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    assert!(err.message.contains("tokenFile"), "{}", err.message);
}

#[test]
fn bad_lines_are_reported_by_number_without_their_content() {
    for (text, line) in
        [("alice", 1), ("# c\nbob:short", 2), ("a:bbbbbbbbbbbbbbbbbbbb:admin", 1), ("a b:bbbbbbbbbbbbbbbbbbbb", 1)]
    {
        let err = Auth::from_text(text, false).unwrap_err();
        assert!(matches!(err, AuthError::Line { line: l, .. } if l == line), "{text}: {err}");
        assert!(!err.to_string().contains("bbbb"), "{err}");
    }
    let dup = "a:bbbbbbbbbbbbbbbbbbbb\nb:bbbbbbbbbbbbbbbbbbbb";
    assert!(matches!(Auth::from_text(dup, false), Err(AuthError::Line { line: 2, .. })));
}

#[test]
fn a_rewritten_token_file_takes_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "alice:aaaaaaaaaaaaaaaaaaaa\n").unwrap();
    let config = scalehub_core::config::ApiConfig {
        token_file: Some(path.clone()),
        protect_reads: false,
        kubernetes_auth: false,
        ..Default::default()
    };
    let auth = Auth::from_config(&config).unwrap().recheck_every(Duration::ZERO);
    assert!(auth.check_write(&bearer("aaaaaaaaaaaaaaaaaaaa")).is_ok());

    let rotate = |text: &str, secs: u64| {
        std::fs::write(&path, text).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
    };
    rotate("alice:bbbbbbbbbbbbbbbbbbbb\n", 1_000);
    assert!(auth.check_write(&bearer("aaaaaaaaaaaaaaaaaaaa")).is_err(), "the old token still works");
    assert!(auth.check_write(&bearer("bbbbbbbbbbbbbbbbbbbb")).is_ok());

    rotate("alice\n", 2_000);
    assert!(auth.check_write(&bearer("bbbbbbbbbbbbbbbbbbbb")).is_ok(), "a broken file must keep the previous tokens");

    std::fs::remove_file(&path).unwrap();
    assert!(auth.check_write(&bearer("bbbbbbbbbbbbbbbbbbbb")).is_err(), "a deleted file's token still works");
    rotate("alice:cccccccccccccccccccc\n", 3_000);
    assert!(auth.check_write(&bearer("cccccccccccccccccccc")).is_ok(), "a file written again is not read");
}

#[test]
fn debug_output_never_shows_tokens() {
    let auth = Auth::from_text(FILE, false).unwrap();
    let shown = format!("{auth:?}");
    assert!(shown.contains("alice") && !shown.contains("aaaaaaaa"), "{shown}");
}
