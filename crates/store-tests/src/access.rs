//! People and credentials through the trait: users, sessions, API keys and the audit log.

use std::sync::Arc;

use langguard_store::*;

fn user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: format!("$argon2id$fake${email}"),
        role,
    }
}

pub async fn users_sessions_and_their_lifetimes(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let ada = store
        .create_user(user("ada@example.com", Role::Admin))
        .await
        .unwrap();
    let bob = store
        .create_user(user("bob@example.com", Role::Viewer))
        .await
        .unwrap();
    // Emails are unique, whatever their case.
    assert!(matches!(
        store
            .create_user(user("ADA@example.com", Role::Member))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.list_users().await.unwrap().len(), 2);
    assert_eq!(
        store.get_user(bob.id).await.unwrap().email,
        "bob@example.com"
    );
    let found = store.find_user_by_email("Bob@Example.com").await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(bob.id));
    assert!(store
        .find_user_by_email("nobody@example.com")
        .await
        .unwrap()
        .is_none());
    let promoted = store
        .update_user(
            bob.id,
            UserPatch {
                role: Some(Role::Member),
                password_hash: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Member);
    assert_eq!(promoted.password_hash, bob.password_hash);

    // A session finds its user until it expires or is deleted.
    let now = langguard_clock::now_ms();
    store
        .create_session(b"token-1", bob.id, now + 60_000)
        .await
        .unwrap();
    store
        .create_session(b"token-2", bob.id, now - 1)
        .await
        .unwrap();
    let signed_in = store.session_user(b"token-1", now).await.unwrap();
    assert_eq!(signed_in.map(|u| u.id), Some(bob.id));
    assert!(
        store.session_user(b"token-2", now).await.unwrap().is_none(),
        "expired"
    );
    assert!(store.session_user(b"unknown", now).await.unwrap().is_none());
    assert!(store
        .get_user(bob.id)
        .await
        .unwrap()
        .last_active_at_ms
        .is_some());
    store.delete_session(b"token-1").await.unwrap();
    assert!(store.session_user(b"token-1", now).await.unwrap().is_none());

    // Deleting a user ends their sessions.
    store
        .create_session(b"token-3", bob.id, now + 60_000)
        .await
        .unwrap();
    store.delete_user(bob.id).await.unwrap();
    assert!(store.session_user(b"token-3", now).await.unwrap().is_none());
    assert!(matches!(
        store.get_user(bob.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![store.get_user(ada.id).await.unwrap()]
    );
}

pub async fn api_keys_work_until_revoked_or_expired(store: Arc<dyn Store>) {
    let owner = store
        .create_user(user("ci@example.com", Role::Member))
        .await
        .unwrap();
    let now = langguard_clock::now_ms();
    let key = |name: &str, hash: &[u8], expires_at_ms: i64| NewApiKey {
        user_id: owner.id,
        name: name.into(),
        prefix: format!("lgr_{name}"),
        token_hash: hash.to_vec(),
        scope: ApiKeyScope::Read,
        integration_id: None,
        expires_at_ms,
    };
    let live = store
        .create_api_key(key("live", b"h-live", now + 86_400_000))
        .await
        .unwrap();
    store
        .create_api_key(key("old", b"h-old", now - 1))
        .await
        .unwrap();
    assert_eq!(store.list_api_keys().await.unwrap().len(), 2);
    let (found, who) = store
        .api_key_user(b"h-live", now)
        .await
        .unwrap()
        .expect("live key");
    assert_eq!((found.id, who.id), (live.id, owner.id));
    assert!(
        store.api_key_user(b"h-old", now).await.unwrap().is_none(),
        "expired"
    );
    let used = store.list_api_keys().await.unwrap();
    let used = used.iter().find(|k| k.id == live.id).unwrap();
    assert!(used.last_used_at_ms.is_some(), "a use is recorded");
    let revoked = store.revoke_api_key(live.id).await.unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    assert!(store.api_key_user(b"h-live", now).await.unwrap().is_none());
    assert!(matches!(
        store.revoke_api_key(9_999).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn the_audit_log_pages_newest_first(store: Arc<dyn Store>) {
    for i in 0..5 {
        store
            .record_audit(NewAuditEntry {
                user_id: None,
                user_email: Some("ada@example.com".into()),
                action: format!("thing.done{i}"),
                resource: Some(format!("thing:{i}")),
                details: serde_json::json!({"n": i}),
                address: Some("127.0.0.1".into()),
            })
            .await
            .unwrap();
    }
    let first = store.list_audit(3, None).await.unwrap();
    let actions: Vec<&str> = first.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["thing.done4", "thing.done3", "thing.done2"]);
    assert_eq!(first[0].details, serde_json::json!({"n": 4}));
    let rest = store
        .list_audit(3, first.last().map(|e| e.id))
        .await
        .unwrap();
    let actions: Vec<&str> = rest.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["thing.done1", "thing.done0"]);
}

pub async fn saved_views_are_their_owners_or_shared_and_go_with_them(store: Arc<dyn Store>) {
    let ann = store
        .create_user(user("ann@example.com", Role::Member))
        .await
        .expect("ann");
    let bob = store
        .create_user(user("bob@example.com", Role::Viewer))
        .await
        .expect("bob");
    let view = |name: &str, owner: i64, shared: bool| NewSavedView {
        name: name.into(),
        query: "status=error".into(),
        owner_id: owner,
        shared,
    };
    let own = store
        .create_saved_view(view("Errors", ann.id, false))
        .await
        .expect("own");
    assert_eq!(own.owner_email, "ann@example.com");
    assert_eq!(own.query, "status=error");
    let shared = store
        .create_saved_view(view("all errors", ann.id, true))
        .await
        .expect("shared");
    assert!(matches!(
        store.create_saved_view(view("Errors", ann.id, true)).await,
        Err(StoreError::Conflict { .. })
    ));
    // Another owner may use the name.
    let bobs = store
        .create_saved_view(view("Errors", bob.id, false))
        .await
        .expect("bob's");
    let names = |views: Vec<SavedView>| -> Vec<(String, i64)> {
        views.into_iter().map(|v| (v.name, v.owner_id)).collect()
    };
    // By name, whatever the case.
    assert_eq!(
        names(store.list_saved_views(ann.id).await.expect("ann's")),
        [
            ("all errors".to_string(), ann.id),
            ("Errors".to_string(), ann.id)
        ]
    );
    assert_eq!(
        names(store.list_saved_views(bob.id).await.expect("bob's")),
        [
            ("all errors".to_string(), ann.id),
            ("Errors".to_string(), bob.id)
        ]
    );
    let replaced = store
        .replace_saved_view(
            shared.id,
            NewSavedView {
                query: "model=gpt-4o".into(),
                ..view("GPT-4o", bob.id, false)
            },
        )
        .await
        .expect("replace");
    assert_eq!(replaced.owner_id, ann.id, "the owner stays");
    assert_eq!((replaced.name.as_str(), replaced.shared), ("GPT-4o", false));
    assert!(matches!(
        store
            .replace_saved_view(shared.id, view("Errors", ann.id, false))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store.delete_saved_view(bobs.id).await.expect("delete");
    assert!(matches!(
        store.get_saved_view(bobs.id).await,
        Err(StoreError::NotFound { .. })
    ));
    // A user's views go with them.
    store.delete_user(ann.id).await.expect("delete ann");
    assert!(matches!(
        store.get_saved_view(own.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store
        .list_saved_views(bob.id)
        .await
        .expect("list")
        .is_empty());
}
