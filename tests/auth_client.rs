//! etcdplan's etcd client under etcd auth, on real etcd: a cluster started by
//! etcdplan from a plain etcdfile, its auth store built through the client's
//! auth calls, auth turned on with etcdctl. The client logged in as root
//! reads users and roles, tells a right password from a wrong one, goes on
//! after auth was enabled under its open connection (a login at connect
//! answered "not enabled", then "user name is empty": a fresh login and one
//! resend, as clientv3 does), while a client without credentials is refused.

mod harness;

use std::process::Output;
use std::time::Duration;

use etcdplan::config::Access;
use etcdplan::io::{AuthCall, EtcdApi, EtcdClient, EtcdErrorKind, Timeouts};
use etcdplan::live::LivePermission;
use etcdplan::model::Endpoint;
use harness::testbed::up_or_skip;
use harness::writer::{Writer, WriterAuth, keys_as};
use harness::{etcdctl, text};

const ROOT_PW: &str = "r00t-auth-client-pw";
const APP_PW: &str = "app-auth-client-pw";

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed:\n{}", text(&out));
    text(&out)
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
    }
}

fn app_grant() -> LivePermission {
    LivePermission {
        key: b"/app/".to_vec(),
        range_end: b"/app0".to_vec(),
        access: Access::ReadWrite,
    }
}

#[test]
fn the_client_logs_in_as_root_and_goes_on_when_auth_is_enabled_under_it() {
    let Some(tb) = up_or_skip(1) else { return };
    ok(tb.etcdplan(
        &tb.etcdfile("auth", "", &tb.all(), &[]),
        &["apply", "--auto-approve"],
    ));
    let url = tb.client_endpoints(&tb.all())[0].clone();
    let ep = Endpoint::parse(&url).unwrap_or_else(|| panic!("{url}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let root = EtcdClient::new(timeouts()).with_user("root".into(), ROOT_PW.into());
    let anon = EtcdClient::new(timeouts());
    // A writer logged in as app from the start, as clientv3 would be.
    let writer = Writer::authenticated(
        vec![url.clone()],
        "/app/w",
        Duration::from_millis(50),
        Duration::from_secs(3),
        None,
        WriterAuth {
            user: "app".into(),
            password: APP_PW.into(),
        },
    );

    rt.block_on(async {
        // Auth off: root's login at connect is answered "not enabled" and the
        // connection carries on without a token.
        assert!(
            !root
                .auth_enabled(&ep)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        root.put(&ep, "/before", "1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            anon.get_value(&ep, "/before")
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some("1")
        );
        let off = root.login_accepted(&ep, "root", ROOT_PW).await;
        assert_eq!(
            off.err().map(|e| e.kind()),
            Some(EtcdErrorKind::AuthNotEnabled)
        );
        // etcd refuses to enable auth without root.
        let refused = root.auth_change(&ep, &AuthCall::Enable).await;
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(EtcdErrorKind::RootUserMissing)
        );

        let grant = app_grant();
        for call in [
            AuthCall::UserAdd {
                user: "root",
                password: Some(ROOT_PW),
            },
            AuthCall::UserGrant {
                user: "root",
                role: "root",
            },
            AuthCall::RoleAdd { role: "app" },
            AuthCall::RoleGrant {
                role: "app",
                permission: &grant,
            },
            AuthCall::UserAdd {
                user: "app",
                password: Some(APP_PW),
            },
            AuthCall::UserGrant {
                user: "app",
                role: "app",
            },
            AuthCall::UserAdd {
                user: "by-cert",
                password: None,
            },
            AuthCall::UserAdd {
                user: "other",
                password: Some("first-pw"),
            },
        ] {
            root.auth_change(&ep, &call)
                .await
                .unwrap_or_else(|e| panic!("{call:?}: {e}"));
        }
        let again = root
            .auth_change(
                &ep,
                &AuthCall::UserAdd {
                    user: "app",
                    password: Some("x"),
                },
            )
            .await;
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(EtcdErrorKind::UserAlreadyExists)
        );
    });

    // Auth on, by etcdctl, under both open connections.
    ok(etcdctl(&url, &["auth", "enable"]));

    rt.block_on(async {
        // The connection without credentials is refused for want of a token.
        let anon_read = anon.get_value(&ep, "/before").await;
        assert_eq!(
            anon_read.err().map(|e| e.kind()),
            Some(EtcdErrorKind::UserEmpty)
        );
        let anon_users = anon.auth_users(&ep).await;
        assert!(anon_users.is_err(), "{anon_users:?}");
        // Root's connection, token-less too, logs in afresh and resends.
        assert_eq!(
            root.get_value(&ep, "/before")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .as_deref(),
            Some("1")
        );
        assert!(
            root.auth_enabled(&ep)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            anon.auth_enabled(&ep)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );

        let users = root.auth_users(&ep).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            users,
            vec![
                ("app".to_owned(), vec!["app".to_owned()]),
                ("by-cert".to_owned(), vec![]),
                ("other".to_owned(), vec![]),
                ("root".to_owned(), vec!["root".to_owned()]),
            ]
        );
        let roles = root.auth_roles(&ep).await.unwrap_or_else(|e| panic!("{e}"));
        let app = roles.iter().find(|r| r.name == "app");
        assert_eq!(
            app.map(|r| r.permissions.clone()),
            Some(vec![app_grant()]),
            "{roles:?}"
        );

        let login = |u: &'static str, p: &'static str| {
            let root = &root;
            let ep = &ep;
            async move { root.login_accepted(ep, u, p).await }
        };
        assert!(
            login("root", ROOT_PW)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            !login("root", "wrong-pw")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(login("app", APP_PW).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(!login("nobody", "x").await.unwrap_or_else(|e| panic!("{e}")));
        // A user without a password logs in by certificate only.
        assert!(!login("by-cert", "").await.unwrap_or_else(|e| panic!("{e}")));

        // Changes under auth, as root: a password, a grant taken and given back.
        for user in ["other", "by-cert"] {
            root.auth_change(
                &ep,
                &AuthCall::UserPassword {
                    user,
                    password: "second-pw",
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(
            !login("other", "first-pw")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            login("other", "second-pw")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        // etcd keeps a user added without a password so: a passwd does not
        // give it one (a switch to a password is a delete and an add).
        assert!(
            !login("by-cert", "second-pw")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        let grant = app_grant();
        root.auth_change(
            &ep,
            &AuthCall::RoleRevoke {
                role: "app",
                permission: &grant,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let revoked = root.auth_roles(&ep).await.unwrap_or_default();
        assert_eq!(
            revoked
                .iter()
                .find(|r| r.name == "app")
                .map(|r| r.permissions.len()),
            Some(0)
        );
        let twice = root
            .auth_change(
                &ep,
                &AuthCall::RoleRevoke {
                    role: "app",
                    permission: &grant,
                },
            )
            .await;
        assert_eq!(
            twice.err().map(|e| e.kind()),
            Some(EtcdErrorKind::PermissionNotGranted)
        );
        root.auth_change(
            &ep,
            &AuthCall::RoleGrant {
                role: "app",
                permission: &grant,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    });
    std::thread::sleep(Duration::from_millis(500));
    let seen = writer.stop();
    eprintln!("app writer: {}", seen.summary());
    // While the grant was revoked the writer may have been refused; the
    // writes before auth and after the grant came back went through, and
    // "user name is empty" was answered with a fresh login, not a failure.
    assert!(seen.retried_after_login >= 1, "{}", seen.summary());
    assert!(
        seen.failed
            .iter()
            .all(|f| f.error.contains("permission denied")),
        "{:?}",
        seen.failed
    );
    let app = WriterAuth {
        user: "app".into(),
        password: APP_PW.into(),
    };
    let found = keys_as(&url, "/app/w", None, Some(&app));
    seen.assert_read_back("app writer", found.iter().map(String::as_str));

    // etcdplan itself, with a plain etcdfile (auth left as found) and the
    // operator's login as etcdctl takes it: the plan reads the cluster and
    // is empty, and the password shows nowhere.
    let plain = tb.etcdfile("auth", "", &tb.all(), &[]);
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, &plain).unwrap_or_else(|e| panic!("{e}"));
    let planned = std::process::Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["plan", "--detailed-exitcode", "--user", "root", "-f"])
        .arg(&path)
        .env("ETCDCTL_PASSWORD", ROOT_PW)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap_or_else(|e| panic!("etcdplan: {e}"));
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    assert!(!text(&planned).contains(ROOT_PW), "{}", text(&planned));

    // Off again, by root's client.
    rt.block_on(async {
        root.auth_change(&ep, &AuthCall::Disable)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !root
                .auth_enabled(&ep)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(anon.get_value(&ep, "/before").await.is_ok());
    });
}
