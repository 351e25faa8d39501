//! Saved views: a Trace Explorer filter set kept by name — the owner's own, or shared with
//! everyone — opened by its URL. Anyone signed in keeps views of their own; sharing one takes a
//! Member or an Admin. A view is changed or deleted by its owner (a shared one also by an
//! Admin); someone else's unshared view doesn't exist to others.

use langguard_clock::format_ms;
use langguard_store::{NewSavedView, Role, SavedView, SavedViewId, User};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// The Trace Explorer's parameters a view keeps (`cursor`, a place in one listing, is not one).
pub const FILTER_KEYS: [&str; 20] = [
    "range",
    "q",
    "status",
    "provider",
    "model",
    "gateway",
    "cached",
    "min_duration_ms",
    "max_duration_ms",
    "min_tokens",
    "max_tokens",
    "min_cost",
    "max_cost",
    "from",
    "to",
    "sort",
    "order",
    "limit",
    "integration_id",
    "metadata",
];

/// A saved view as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SavedViewView {
    pub id: i64,
    pub name: String,
    /// The Trace Explorer's query string, e.g. `status=error&model=gpt-4o`.
    pub query: String,
    /// Where it opens: `/traces?{query}`.
    pub url: String,
    pub shared: bool,
    /// The owner's email.
    pub owner: String,
    /// The caller owns it.
    pub mine: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl SavedViewView {
    pub fn new(view: &SavedView, caller: &User) -> Self {
        Self {
            id: view.id,
            name: view.name.clone(),
            query: view.query.clone(),
            url: url_of(&view.query),
            shared: view.shared,
            owner: view.owner_email.clone(),
            mine: view.owner_id == caller.id,
            created_at: format_ms(view.created_at_ms),
            updated_at: format_ms(view.updated_at_ms),
        }
    }
}

/// The Trace Explorer address of a view's query.
pub fn url_of(query: &str) -> String {
    if query.is_empty() {
        "/traces".into()
    } else {
        format!("/traces?{query}")
    }
}

/// What a client asks to save; `None` keeps a field as it is (or takes its default).
#[derive(Debug, Clone, Default)]
pub struct SavedViewInput {
    pub name: Option<String>,
    /// A query string, or a whole Trace Explorer URL (`/traces?…`, `https://…/traces?…`).
    pub query: Option<String>,
    pub shared: Option<bool>,
}

fn bad(message: impl Into<String>) -> OpsError {
    OpsError::invalid("invalid_view", message)
}

/// `query` as a view keeps it: only the Trace Explorer's filter parameters, empty ones and the
/// page cursor dropped, in a stable form.
pub fn canonical_query(query: &str) -> OpsResult<String> {
    let query = query.trim();
    // A whole address pasted from the browser: its query string.
    let query = match query.split_once('?') {
        Some((path, rest)) if path.ends_with("/traces") || path.is_empty() => rest,
        Some(_) => {
            return Err(bad(
                "give the Trace Explorer's address (/traces?…) or its query string",
            ))
        }
        None => query,
    };
    let query = query.split('#').next().unwrap_or_default();
    if query.len() > 4_000 {
        return Err(bad("the query is longer than 4,000 characters"));
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "cursor" || value.trim().is_empty() {
            continue;
        }
        if !FILTER_KEYS.contains(&key.as_ref()) {
            return Err(bad(format!(
                "{key:?} is not a Trace Explorer filter; use {}",
                FILTER_KEYS.join(", ")
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(bad(format!("{key} holds a control character")));
        }
        out.append_pair(&key, value.trim());
    }
    Ok(out.finish())
}

fn check_name(name: &str) -> OpsResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(bad("give the view a name of at most 100 characters"));
    }
    Ok(name.to_owned())
}

fn may_share(user: &User) -> OpsResult<()> {
    if user.role == Role::Viewer {
        return Err(OpsError::Forbidden(
            "viewers keep views of their own; a Member or an Admin shares them".into(),
        ));
    }
    Ok(())
}

/// The views `user` sees: their own and those shared, by name.
pub async fn list(ops: &Services, user: &User) -> OpsResult<Vec<SavedViewView>> {
    Ok(ops
        .store
        .list_saved_views(user.id)
        .await?
        .iter()
        .map(|v| SavedViewView::new(v, user))
        .collect())
}

/// One view `user` may see.
pub async fn get(ops: &Services, user: &User, id: SavedViewId) -> OpsResult<SavedView> {
    let view = ops.store.get_saved_view(id).await?;
    if view.owner_id != user.id && !view.shared {
        // Someone else's own view is not there for anyone else.
        return Err(OpsError::NotFound(format!(
            "saved view {id} does not exist"
        )));
    }
    Ok(view)
}

/// One view `user` may change or delete.
async fn writable(ops: &Services, user: &User, id: SavedViewId) -> OpsResult<SavedView> {
    let view = get(ops, user, id).await?;
    // A shared view is everyone's: changing it takes the role sharing does, even for its
    // owner (a Member since made a Viewer, or a read-only key).
    if view.shared {
        may_share(user)?;
    }
    if view.owner_id != user.id && user.role != Role::Admin {
        return Err(OpsError::Forbidden(format!(
            "{} shared this view; only they or an Admin change it",
            view.owner_email
        )));
    }
    Ok(view)
}

#[instrument(skip_all, fields(user_id = user.id))]
pub async fn add(ops: &Services, user: &User, input: SavedViewInput) -> OpsResult<SavedView> {
    let name = check_name(input.name.as_deref().unwrap_or_default())?;
    let query = canonical_query(input.query.as_deref().unwrap_or_default())?;
    let shared = input.shared.unwrap_or(false);
    if shared {
        may_share(user)?;
    }
    let view = ops
        .store
        .create_saved_view(NewSavedView {
            name,
            query,
            owner_id: user.id,
            shared,
        })
        .await?;
    if shared {
        audit(ops, user, "saved_view.shared", &view).await;
    }
    Ok(view)
}

#[instrument(skip_all, fields(user_id = user.id, view_id = id))]
pub async fn change(
    ops: &Services,
    user: &User,
    id: SavedViewId,
    input: SavedViewInput,
) -> OpsResult<SavedView> {
    let current = writable(ops, user, id).await?;
    let shared = input.shared.unwrap_or(current.shared);
    if shared && !current.shared {
        may_share(user)?;
    }
    let view = ops
        .store
        .replace_saved_view(
            id,
            NewSavedView {
                name: match input.name {
                    Some(n) => check_name(&n)?,
                    None => current.name.clone(),
                },
                query: match input.query {
                    Some(q) => canonical_query(&q)?,
                    None => current.query.clone(),
                },
                owner_id: current.owner_id,
                shared,
            },
        )
        .await?;
    if shared || current.shared {
        audit(ops, user, "saved_view.updated", &view).await;
    }
    Ok(view)
}

#[instrument(skip_all, fields(user_id = user.id, view_id = id))]
pub async fn remove(ops: &Services, user: &User, id: SavedViewId) -> OpsResult<()> {
    let view = writable(ops, user, id).await?;
    ops.store.delete_saved_view(id).await?;
    if view.shared {
        audit(ops, user, "saved_view.deleted", &view).await;
    }
    Ok(())
}

/// Shared views are everyone's: who changed them goes in the audit log.
async fn audit(ops: &Services, user: &User, action: &str, view: &SavedView) {
    ops.audit(
        Actor::User(user),
        action,
        Some(format!("saved_view:{}", view.id)),
        json!({"name": view.name, "shared": view.shared}),
        None,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_keeps_the_filters_only() {
        assert_eq!(
            canonical_query("/traces?status=error&model=gpt-4o&cursor=abc&provider=").expect("ok"),
            "status=error&model=gpt-4o"
        );
        assert_eq!(
            canonical_query(
                "https://lg.example.com/traces?metadata=team%3Dsearch&metadata=env%3Dprod#x"
            )
            .expect("ok"),
            "metadata=team%3Dsearch&metadata=env%3Dprod"
        );
        assert_eq!(canonical_query("").expect("ok"), "");
        for bad in ["colour=red", "/monitoring?range=24h", "q=a%00b"] {
            assert!(canonical_query(bad).is_err(), "{bad}");
        }
        assert!(canonical_query(&"q=x".repeat(2_000)).is_err());
    }
}
