//! The binary's argument checks, which fail before any database is opened.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_enablement-bridge"))
        .args(args)
        .env_remove("BRIDGE_DATABASE_URL")
        .output()
        .unwrap()
}

#[test]
fn invalid_tenant_id_exits_with_two() {
    for args in [
        &["tenant", "create", "Bad_Id", "--name", "Bad"][..],
        &["tenant", "delete", "bad:id", "--yes"][..],
        &[
            "token",
            "issue",
            "--tenant",
            "UPPER",
            "--scopes",
            "users:read",
        ][..],
        &["scim-token", "create", "--tenant", "a.b"][..],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("tenant id"), "{args:?}: {stderr}");
    }
}

#[test]
fn delete_without_yes_is_refused() {
    let output = run(&["tenant", "delete", "acme"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--yes"));
}

#[test]
fn unknown_scope_exits_with_two() {
    let output = run(&[
        "token",
        "issue",
        "--tenant",
        "acme",
        "--scopes",
        "users:admin",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scope"));
}
