//! Every etcdfile under `tests/etcdfiles/` against its golden diagnostics.
//!
//! `invalid/*.toml` must be refused with at least one error; `warnings/*.toml`
//! must be accepted with at least one warning. The rendered report (message,
//! labelled span with line and column, help) is pinned by an insta snapshot.

use std::path::{Path, PathBuf};

use etcdplan::config::{self, ConfigError, Context, Level, SecretSource};

/// The facts the examples name outside the file: a variable that is not set,
/// a password file that does not exist and one that is empty (read for real,
/// so the messages are `read_secret`'s), and a revocation list not found.
fn ctx(text: &str) -> Context {
    let mut ctx = Context {
        base_dir: PathBuf::from("/srv/etcdplan"),
        home: Some(PathBuf::from("/home/operator")),
        file_hash: config::hash(text),
        ..Default::default()
    };
    for source in [
        SecretSource::Env("ETCDPLAN_TEST_UNSET".into()),
        SecretSource::File("/srv/etcdplan/no-such-password".into()),
        SecretSource::File("/dev/null".into()),
    ] {
        let readable = config::read_secret(&source).map(drop);
        ctx.secret_sources.insert(source, readable);
    }
    ctx.local_files.insert(
        PathBuf::from("/srv/etcdplan/revoked.crl"),
        Err("cannot read it: No such file or directory (os error 2)".into()),
    );
    ctx
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn invalid_etcdfiles_are_refused_with_their_diagnostics() {
    let mut count = 0;
    insta::glob!("etcdfiles/invalid/*.toml", |path| {
        count += 1;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let result = config::parse(&name(path), text.clone(), &ctx(&text));
        let problems = match result {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(other) => panic!("{}: unexpected error {other}", name(path)),
            Ok(_) => panic!("{}: was accepted", name(path)),
        };
        assert!(
            problems.iter().any(|p| p.level == Level::Error),
            "{}: refused without an error",
            name(path)
        );
        for p in &problems {
            assert!(
                !p.labels.is_empty(),
                "{}: {} has no span",
                name(path),
                p.message
            );
        }
        insta::assert_snapshot!(config::render_plain(&problems, 100));
    });
    assert!(count >= 30, "only {count} invalid etcdfiles");
}

#[test]
fn questionable_etcdfiles_are_accepted_with_warnings() {
    insta::glob!("etcdfiles/warnings/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let loaded = match config::parse(&name(path), text.clone(), &ctx(&text)) {
            Ok(l) => l,
            Err(e) => panic!("{}: refused: {e}", name(path)),
        };
        assert!(!loaded.warnings.is_empty(), "{}: no warning", name(path));
        insta::assert_snapshot!(config::render_plain(&loaded.warnings, 100));
    });
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let text =
        std::fs::read_to_string("tests/etcdfiles/invalid/many-semantic-problems-at-once.toml")
            .unwrap_or_default();
    let Err(ConfigError::Invalid { problems, .. }) =
        config::parse("f.toml", text.clone(), &ctx(&text))
    else {
        panic!("accepted");
    };
    let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
    for code in [
        "etcdfile::bad-size",
        "etcdfile::bad-retention",
        "etcdfile::cert-auth-without-tls",
        "etcdfile::bad-name",
        "etcdfile::bad-address",
        "etcdfile::same-port",
    ] {
        assert!(codes.contains(&code), "missing {code} in {codes:?}");
    }
}
