//! People: add, change role or password, remove — never the last admin.

use langguard_store::{NewUser, Role, User, UserId, UserPatch};
use serde_json::json;
use tracing::instrument;

use crate::credentials::{check_password_rules, hash_password};
use crate::{Actor, OpsError, OpsResult, Services};

/// A password people may choose, hashed (what the store keeps).
pub async fn password_hash(password: String) -> OpsResult<String> {
    check_password_rules(&password)?;
    Ok(hash_password(password).await?)
}

/// A new user as the store takes it: the email trimmed, the password checked and hashed.
pub async fn new_user(email: &str, password: String, role: Role) -> OpsResult<NewUser> {
    Ok(NewUser {
        email: email.trim().to_owned(),
        password_hash: password_hash(password).await?,
        role,
    })
}

/// Checks the password rules, hashes, saves and audits a new user.
#[instrument(skip_all, fields(role = role.as_str()))]
pub async fn add(
    ops: &Services,
    actor: Actor<'_>,
    email: &str,
    password: String,
    role: Role,
) -> OpsResult<User> {
    let created = ops
        .store
        .create_user(new_user(email, password, role).await?)
        .await?;
    ops.audit(
        actor,
        "user.created",
        Some(format!("user:{}", created.id)),
        json!({"email": created.email, "role": created.role}),
        None,
    )
    .await;
    Ok(created)
}

/// Changes a user's role and/or password.
#[instrument(skip_all, fields(user_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: UserId,
    role: Option<Role>,
    password: Option<String>,
) -> OpsResult<User> {
    let target = ops.store.get_user(id).await?;
    if target.role == Role::Admin && role.is_some_and(|r| r != Role::Admin) {
        ensure_another_admin(ops, id).await?;
    }
    let changes = json!({"role": role, "password_changed": password.is_some()});
    let password_hash = match password {
        Some(p) => Some(password_hash(p).await?),
        None => None,
    };
    let updated = ops
        .store
        .update_user(
            id,
            UserPatch {
                role,
                password_hash,
            },
        )
        .await?;
    ops.audit(
        actor,
        "user.updated",
        Some(format!("user:{id}")),
        changes,
        None,
    )
    .await;
    Ok(updated)
}

/// Deletes a user (with their sessions and keys).
#[instrument(skip_all, fields(user_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: UserId) -> OpsResult<User> {
    let removed = ops.store.get_user(id).await?;
    if removed.role == Role::Admin {
        ensure_another_admin(ops, id).await?;
    }
    ops.store.delete_user(id).await?;
    ops.audit(
        actor,
        "user.deleted",
        Some(format!("user:{id}")),
        json!({"email": removed.email}),
        None,
    )
    .await;
    Ok(removed)
}

/// Nobody may remove or demote the last admin: the workspace would be unmanageable.
async fn ensure_another_admin(ops: &Services, leaving: UserId) -> OpsResult<()> {
    let others = ops
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Admin && u.id != leaving)
        .count();
    if others == 0 {
        return Err(OpsError::Conflict(
            "this is the last admin; make someone else admin first".into(),
        ));
    }
    Ok(())
}
