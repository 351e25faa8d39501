//! The client against the Cloudflare emulator: both token kinds on their own paths, gateways
//! across pages, log detail and bodies, and the errors a person sees.

use std::time::Duration;

use langguard_cf_emulator::{
    Emulator, EmulatorConfig, RunningEmulator, SeedSpec, TokenSpec, TokenStatus as EmuTokenStatus,
};
use langguard_cloudflare::{
    ClientConfig, CloudflareClient, CloudflareError, Direction, LogFilter, LogQuery,
    RateLimitPolicy, RetryPolicy, TokenKind,
};
use time::OffsetDateTime;

const ACCOUNT: &str = "acct-1";

async fn emulator() -> RunningEmulator {
    let emulator = Emulator::new(EmulatorConfig {
        gateways_max_per_page: 50,
        ..EmulatorConfig::default()
    });
    emulator.add_account(ACCOUNT);
    emulator.add_account("other");
    emulator.add_token("user-token", TokenSpec::user(&[ACCOUNT]));
    emulator.add_token("acct-token", TokenSpec::account_owned(ACCOUNT));
    emulator.add_token(
        "no-perm",
        TokenSpec {
            ai_gateway_read: false,
            ..TokenSpec::user(&[ACCOUNT])
        },
    );
    emulator.add_token(
        "expired",
        TokenSpec {
            status: EmuTokenStatus::Expired,
            ..TokenSpec::user(&[ACCOUNT])
        },
    );
    for i in 0..57 {
        emulator.add_gateway(ACCOUNT, &format!("gw-{i:02}"));
    }
    let now = OffsetDateTime::now_utc();
    emulator.seed_logs(
        ACCOUNT,
        "gw-00",
        SeedSpec {
            count: 120,
            from: now - time::Duration::hours(1),
            to: now,
            seed: 5,
        },
    );
    emulator.spawn().await.expect("emulator")
}

fn client(emu: &RunningEmulator, account: &str, token: &str) -> CloudflareClient {
    let config = ClientConfig {
        api_base: emu.base_url(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        rate_limit: RateLimitPolicy {
            quota: 10_000,
            window: Duration::from_secs(300),
        },
    };
    CloudflareClient::new(&config, account, token).expect("client")
}

#[tokio::test]
async fn user_and_account_owned_tokens_verify_on_their_own_paths() {
    let emu = emulator().await;
    let (kind, v) = client(&emu, ACCOUNT, "user-token")
        .verify_token()
        .await
        .expect("user token");
    assert_eq!(kind, TokenKind::User);
    assert_eq!(v.id.len(), 32);
    let (kind, _) = client(&emu, ACCOUNT, "acct-token")
        .verify_token()
        .await
        .expect("account token");
    assert_eq!(kind, TokenKind::Account);
    let err = client(&emu, ACCOUNT, "nonsense")
        .verify_token()
        .await
        .expect_err("invalid");
    assert!(matches!(err, CloudflareError::AuthFailed { .. }), "{err:?}");
    assert!(err.hint().contains("revoked or expired"));
    let err = client(&emu, ACCOUNT, "expired")
        .verify_token()
        .await
        .expect_err("expired");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(CloudflareClient::new(&ClientConfig::default(), ACCOUNT, "bad token\n").is_err());
}

#[tokio::test]
async fn the_gateways_list_reads_on_past_a_server_side_page_clamp() {
    // The server serves 20 per page whatever `per_page` asks: a short page is not the end
    // while `total_count` says there are more.
    let emulator = Emulator::new(EmulatorConfig {
        gateways_clamp_per_page: Some(20),
        ..EmulatorConfig::default()
    });
    emulator.add_account(ACCOUNT);
    emulator.add_token("user-token", TokenSpec::user(&[ACCOUNT]));
    for i in 0..45 {
        emulator.add_gateway(ACCOUNT, &format!("gw-{i:02}"));
    }
    let emu = emulator.spawn().await.expect("emulator");
    let gateways = client(&emu, ACCOUNT, "user-token")
        .list_gateways()
        .await
        .expect("gateways");
    let mut ids: Vec<String> = gateways.into_iter().map(|g| g.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 45, "three clamped pages");
    assert_eq!(emu.emulator.stats().list_gateways_calls, 3);
}

#[tokio::test]
async fn gateways_are_listed_across_pages_and_errors_say_what_to_do() {
    let emu = emulator().await;
    let gateways = client(&emu, ACCOUNT, "user-token")
        .list_gateways()
        .await
        .expect("gateways");
    assert_eq!(gateways.len(), 57, "both pages");
    let err = client(&emu, ACCOUNT, "no-perm")
        .list_gateways()
        .await
        .expect_err("no permission");
    assert!(
        matches!(err, CloudflareError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(err.hint().contains("AI Gateway read permissions"));
    let err = client(&emu, "other", "user-token")
        .list_gateways()
        .await
        .expect_err("not this account");
    assert!(
        matches!(err, CloudflareError::PermissionDenied { .. }),
        "{err:?}"
    );
    let err = client(&emu, ACCOUNT, "user-token")
        .list_logs("no-such-gateway", &LogQuery::default())
        .await
        .expect_err("unknown gateway");
    assert!(
        matches!(
            err,
            CloudflareError::NotFound {
                code: Some(7002),
                ..
            }
        ),
        "{err:?}"
    );
    emu.emulator.revoke_token("user-token");
    let err = client(&emu, ACCOUNT, "user-token")
        .list_gateways()
        .await
        .expect_err("revoked");
    assert!(matches!(err, CloudflareError::AuthFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn logs_pages_detail_and_bodies() {
    let emu = emulator().await;
    let c = client(&emu, ACCOUNT, "user-token");
    let first = c
        .list_logs(
            "gw-00",
            &LogQuery {
                per_page: 50,
                direction: Direction::Asc,
                ..LogQuery::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(first.logs.len(), 50);
    assert_eq!(first.info.as_ref().and_then(|i| i.total_count), Some(120));
    assert!(
        first
            .logs
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at),
        "ascending"
    );
    // The filter goes as one JSON parameter and is honoured.
    let cut = langguard_clock::parse_ms(&first.logs[49].created_at).expect("time");
    let after = c
        .list_logs(
            "gw-00",
            &LogQuery {
                filters: vec![LogFilter::created_after(cut)],
                ..LogQuery::default()
            },
        )
        .await
        .expect("filtered");
    let total = after.info.and_then(|i| i.total_count).expect("count");
    assert!(total <= 70, "filtered total {total}");
    let third = c
        .list_logs(
            "gw-00",
            &LogQuery {
                page: 3,
                ..LogQuery::default()
            },
        )
        .await
        .expect("page 3");
    assert_eq!(third.logs.len(), 20);
    let beyond = c
        .list_logs(
            "gw-00",
            &LogQuery {
                page: 9,
                ..LogQuery::default()
            },
        )
        .await
        .expect("past the end");
    assert!(beyond.logs.is_empty());

    let id = &first.logs[0].id;
    let detail = c.get_log("gw-00", id).await.expect("detail");
    assert_eq!(&detail.log.id, id);
    // About 10 % of synthetic logs keep no payload: those answer `None`, not an error.
    let (mut stored, mut absent) = (0, 0);
    for log in &first.logs {
        match c
            .get_log_request("gw-00", &log.id)
            .await
            .expect("request body")
        {
            Some(body) => {
                assert!(!body.bytes.is_empty());
                stored += 1;
            }
            None => absent += 1,
        }
        c.get_log_response("gw-00", &log.id)
            .await
            .expect("response body");
    }
    assert!(
        stored > 0 && stored + absent == 50,
        "{stored} stored, {absent} absent"
    );
    let err = c
        .get_log("gw-00", "no-such-log")
        .await
        .expect_err("unknown log");
    assert!(matches!(err, CloudflareError::NotFound { .. }));
    assert!(c.stats().requests > 0);
}
