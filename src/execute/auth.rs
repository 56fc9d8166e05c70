//! One auth step: the change sent to one reachable voter (the leader found
//! by Status) through `EtcdApi::auth_change`, then read back from the same
//! member, so a step that reports done did take.
//!
//! The step names only where a password is; it is read here, from
//! `Context::secrets`, for the one call that sends it, and appears in no
//! outcome, error or event.

use super::{Context, StepError, StepOutcome, membership};
use crate::diff::AuthOp;
use crate::io::AuthCall;
use crate::live::LivePermission;
use crate::model::Endpoint;

/// Applies one auth change and checks it by reading the store back.
pub(super) async fn change(ctx: &Context<'_>, op: &AuthOp) -> Result<StepOutcome, StepError> {
    let what = crate::plan::Step::Auth { change: op.clone() }.describe();
    let view = membership::leader(ctx).await?;
    let ep = &view.endpoint;
    // The password, when the change sends one: read on this machine at load.
    let source = match op {
        AuthOp::AddUser {
            password: Some(src),
            ..
        }
        | AuthOp::SetPassword { source: src, .. } => Some(src),
        _ => None,
    };
    let secret = match source {
        Some(src) => Some(ctx.secrets.get(src).ok_or_else(|| StepError::Refused {
            what: what.clone(),
            why: format!("the password from {src} was not read on this machine"),
        })?),
        None => None,
    };
    let password = secret.map(crate::config::Secret::expose);
    let granted = match op {
        AuthOp::Grant { permission, .. } => Some(LivePermission::of(permission)),
        _ => None,
    };
    let call = match op {
        AuthOp::Enable => AuthCall::Enable,
        AuthOp::Disable => AuthCall::Disable,
        AuthOp::AddRole { role } => AuthCall::RoleAdd { role },
        AuthOp::DeleteRole { role } => AuthCall::RoleDelete { role },
        AuthOp::Grant { role, .. } => {
            let Some(permission) = &granted else {
                return Err(StepError::Refused {
                    what,
                    why: "the grant has no permission".into(),
                });
            };
            AuthCall::RoleGrant { role, permission }
        }
        AuthOp::Revoke { role, permission } => AuthCall::RoleRevoke { role, permission },
        AuthOp::AddUser { user, .. } => AuthCall::UserAdd { user, password },
        AuthOp::DeleteUser { user } => AuthCall::UserDelete { user },
        AuthOp::GrantRole { user, role } => AuthCall::UserGrant { user, role },
        AuthOp::RevokeRole { user, role } => AuthCall::UserRevoke { user, role },
        AuthOp::SetPassword { user, .. } => match password {
            Some(password) => AuthCall::UserPassword { user, password },
            None => {
                return Err(StepError::Refused {
                    what,
                    why: "no password to set".into(),
                });
            }
        },
    };
    ctx.etcd.auth_change(ep, &call).await?;
    let checked = read_back(ctx, ep, op, password).await?;
    match checked {
        Ok(said) => Ok(StepOutcome::from(said)),
        Err(why) => Err(StepError::NotApplied { what, why }),
    }
}

/// Reads the change back from the member that took it: Ok(what was seen),
/// or Err(why the store does not show it).
async fn read_back(
    ctx: &Context<'_>,
    ep: &Endpoint,
    op: &AuthOp,
    password: Option<&str>,
) -> Result<Result<String, String>, StepError> {
    let etcd = ctx.etcd;
    let user_roles = |users: Vec<(String, Vec<String>)>, user: &str| {
        users.into_iter().find(|(n, _)| n == user).map(|(_, r)| r)
    };
    Ok(match op {
        AuthOp::Enable | AuthOp::Disable => {
            let want = matches!(op, AuthOp::Enable);
            let on = etcd.auth_enabled(ep).await?;
            if on == want {
                Ok(format!("auth is {}", if on { "on" } else { "off" }))
            } else {
                Err(format!(
                    "etcd reports auth {}",
                    if on { "on" } else { "off" }
                ))
            }
        }
        AuthOp::AddRole { role } | AuthOp::DeleteRole { role } => {
            let want = matches!(op, AuthOp::AddRole { .. });
            let has = etcd.auth_roles(ep).await?.iter().any(|r| &r.name == role);
            seen(has == want, format!("role {role}"), want)
        }
        AuthOp::Grant { role, .. } | AuthOp::Revoke { role, .. } => {
            let (want, permission) = match op {
                AuthOp::Grant { permission, .. } => (true, LivePermission::of(permission)),
                AuthOp::Revoke { permission, .. } => (false, permission.clone()),
                _ => return Ok(Err("not a grant".into())),
            };
            let roles = etcd.auth_roles(ep).await?;
            let perms = roles
                .iter()
                .find(|r| &r.name == role)
                .map(|r| r.permissions.as_slice())
                .unwrap_or_default();
            let has = if want {
                perms.contains(&permission)
            } else {
                perms
                    .iter()
                    .any(|p| p.key == permission.key && p.range_end == permission.range_end)
            };
            seen(
                has == want,
                format!("role {role}: {}", crate::diff::auth::shown(&permission)),
                want,
            )
        }
        AuthOp::AddUser { user, .. } | AuthOp::DeleteUser { user } => {
            let want = matches!(op, AuthOp::AddUser { .. });
            let has = user_roles(etcd.auth_users(ep).await?, user).is_some();
            seen(has == want, format!("user {user}"), want)
        }
        AuthOp::GrantRole { user, role } | AuthOp::RevokeRole { user, role } => {
            let want = matches!(op, AuthOp::GrantRole { .. });
            let has = user_roles(etcd.auth_users(ep).await?, user)
                .is_some_and(|roles| roles.iter().any(|r| r == role));
            seen(has == want, format!("user {user}: role {role}"), want)
        }
        AuthOp::SetPassword { user, .. } => {
            // etcd checks passwords only while auth is on; before `auth
            // enable` the next plan checks it instead.
            if !etcd.auth_enabled(ep).await? {
                Ok(format!(
                    "password of {user} set (checked by a login once auth is on)"
                ))
            } else if etcd
                .login_accepted(ep, user, password.unwrap_or_default())
                .await?
            {
                Ok(format!("etcd accepts the new password of {user}"))
            } else {
                Err(format!("etcd refuses the password just set for {user}"))
            }
        }
    })
}

/// The read-back verdict for something that should (`want`) or should not
/// be in the store.
fn seen(ok: bool, thing: String, want: bool) -> Result<String, String> {
    match (ok, want) {
        (true, true) => Ok(format!("{thing} read back")),
        (true, false) => Ok(format!("{thing} gone")),
        (false, true) => Err(format!("{thing} is not in the store read back")),
        (false, false) => Err(format!("{thing} is still in the store read back")),
    }
}
