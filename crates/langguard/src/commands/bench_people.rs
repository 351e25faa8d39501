//! `langguard bench people`: the People page at scale. Stores `--logs` interactions over the
//! last 30 days by `--users` distinct users (skewed: a few spend most) in 200 teams with the
//! user and team keys named — so the identity rollups are kept at ingest — then times what the
//! page and the upkeep do: top 50 by spend over 30 days, other sorts, a search, one person's
//! page, the window moving on a day, the backfill of a key named afterwards, and the spend
//! anomaly detection judging every user session (each hour of a user's traffic). SQLite, and
//! PostgreSQL beside it when `--database-url postgres://…` is given (its data is removed
//! afterwards).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use langguard_store::{
    CostSource, IdentityKind, NewInteraction, PeopleQuery, PeopleSort, Store, DAY_MS,
};
use langguard_store_postgres::PgStore;
use langguard_store_sqlite::SqliteStore;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::commands::synthetic::bench_integration;
use crate::format;

const MODELS: [(&str, &str, f64); 6] = [
    ("openai", "gpt-4o-mini", 0.0004),
    ("openai", "gpt-4o", 0.006),
    ("anthropic", "claude-sonnet-4-20250514", 0.009),
    ("google-ai-studio", "gemini-2.0-flash", 0.0003),
    ("deepseek", "deepseek-chat", 0.0008),
    ("groq", "llama-3.3-70b-versatile", 0.0005),
];
const TEAMS: usize = 200;
const BATCH: usize = 5_000;

/// `n` logs in time order over the 30 days before `now`, `batch` at a time.
struct Traffic {
    rng: SmallRng,
    users: usize,
    n: usize,
    total: usize,
    from: i64,
    step: f64,
}

impl Traffic {
    fn new(total: usize, users: usize, now: i64) -> Self {
        let span = 30 * DAY_MS - 60_000;
        Self {
            rng: SmallRng::seed_from_u64(11),
            users,
            n: 0,
            total,
            from: now - span,
            step: span as f64 / total.max(1) as f64,
        }
    }

    /// The next batch, not past the `until`th log.
    fn next_batch(&mut self, until: usize) -> Option<Vec<NewInteraction>> {
        let until = until.min(self.total);
        if self.n >= until {
            return None;
        }
        let end = (self.n + BATCH).min(until);
        let mut batch = Vec::with_capacity(end - self.n);
        for n in self.n..end {
            // Squaring a uniform draw skews spend to low ids, as real usage is; every id of
            // 100,000 still appears at 10M logs.
            let x: f64 = self.rng.gen();
            let user = ((x * x) * self.users as f64) as usize % self.users;
            let (provider, model, price) = MODELS[self.rng.gen_range(0..MODELS.len())];
            let tokens_in: i64 = self.rng.gen_range(50..4_000);
            let tokens_out: i64 = self.rng.gen_range(10..1_500);
            let success = self.rng.gen_bool(0.97);
            batch.push(NewInteraction {
                log_id: format!("bench-people-{n}"),
                created_at_ms: self.from + (n as f64 * self.step) as i64,
                provider: provider.into(),
                model: model.into(),
                path: Some("chat/completions".into()),
                status_code: Some(if success { 200 } else { 500 }),
                success,
                cached: self.rng.gen_bool(0.1),
                duration_ms: self.rng.gen_range(80..6_000),
                tokens_in: Some(tokens_in),
                tokens_out: Some(tokens_out),
                cost_usd: Some((tokens_in + 3 * tokens_out) as f64 / 1_000.0 * price),
                cost_source: Some(CostSource::Gateway),
                metadata: Some(format!(
                    r#"{{"user_id":"user-{user:06}","team":"team-{:03}","app":"bench"}}"#,
                    user % TEAMS
                )),
                requested_model: None,
                details: Default::default(),
            });
        }
        self.n = end;
        Some(batch)
    }
}

/// Median and slowest of `runs` runs of `f`.
async fn timed<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    // One unmeasured run warms the caches, as a page opened twice would be.
    f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() - 1]))
}

struct Figures {
    backend: &'static str,
    ingest_without_per_s: f64,
    ingest_per_s: f64,
    /// (what, median, slowest)
    queries: Vec<(&'static str, Duration, Duration)>,
    rollover: Duration,
    /// The slowest fold of a minute's additions.
    fold: Duration,
    backfill_per_s: f64,
    users: u64,
    /// Spend anomalies: sessions judged the first time (all of them) per second, how many
    /// were, how many flagged, and a minute's judging with nothing new.
    judged_per_s: f64,
    judged: u64,
    flagged: u64,
    idle_detect: Duration,
}

impl Figures {
    fn summary(&self) -> String {
        let queries: Vec<String> = self
            .queries
            .iter()
            .map(|(what, median, _)| format!("{what} {:.1} ms", median.as_secs_f64() * 1e3))
            .collect();
        format!(
            "ingest {:.0}/s without keys, {:.0}/s with; {}; fold {:.0} ms; rollover {:.0} ms; \
             backfill {:.0}/s; {} sessions judged at {:.0}/s",
            self.ingest_without_per_s,
            self.ingest_per_s,
            queries.join(", "),
            self.fold.as_secs_f64() * 1e3,
            self.rollover.as_secs_f64() * 1e3,
            self.backfill_per_s,
            self.judged,
            self.judged_per_s
        )
    }
}

fn query(sort: PeopleSort, search: Option<&str>) -> PeopleQuery {
    PeopleQuery {
        kind: IdentityKind::User,
        sort,
        search: search.map(str::to_owned),
        limit: 50,
        offset: 0,
    }
}

/// Stores the traffic's logs up to the `until`th; logs per second.
async fn ingest(
    store: &Arc<dyn Store>,
    folds: &mut Vec<Duration>,
    integration: i64,
    traffic: &mut Traffic,
    until: usize,
    backend: &str,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut stored = 0u64;
    let mut reported = 0u64;
    let mut last_fold = Instant::now();
    while traffic.n < until {
        let Some(batch) = traffic.next_batch(until) else {
            break;
        };
        stored += store
            .ingest_batch(integration, "bench-gw", batch, None)
            .await?
            .inserted;
        // The upkeep folds what was appended each minute, in steps; ingest waits meanwhile
        // on SQLite (one writer), so the folds count against the ingest rate.
        if last_fold.elapsed() >= Duration::from_secs(60) {
            let started = Instant::now();
            while store
                .fold_identities(langguard_ops::people::FOLD_STEP)
                .await?
                >= u64::from(langguard_ops::people::FOLD_STEP)
            {}
            folds.push(started.elapsed());
            last_fold = Instant::now();
        }
        if stored >= reported + 1_000_000 {
            reported = stored;
            eprintln!(
                "  {backend}: {} stored ({:.0}/s)",
                format::count(stored as i64),
                stored as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let fold = Instant::now();
    store.fold_identities(u32::MAX).await?;
    folds.push(fold.elapsed());
    Ok(stored as f64 / started.elapsed().as_secs_f64())
}

async fn measure(
    backend: &'static str,
    store: Arc<dyn Store>,
    logs: usize,
    users: usize,
    runs: usize,
) -> anyhow::Result<Figures> {
    let integration = bench_integration(store.as_ref(), "bench-people", false).await?;
    for kind in [IdentityKind::User, IdentityKind::Team] {
        store.set_identity_key(kind, None, None).await?;
    }
    let now = crate::app::now_ms();
    store.advance_people_window(now).await?;
    let mut traffic = Traffic::new(logs, users, now);

    // The first tenth with no key named: ingest as it is without people, and the history a
    // key named afterwards is backfilled from.
    let first = logs / 10;
    let ingest_without_per_s = ingest(
        &store,
        &mut Vec::new(),
        integration.id,
        &mut traffic,
        first,
        backend,
    )
    .await?;
    store
        .set_identity_key(IdentityKind::User, Some("user_id".into()), None)
        .await?;
    store
        .set_identity_key(IdentityKind::Team, Some("team".into()), None)
        .await?;
    let started = Instant::now();
    while store
        .backfill_identities(langguard_ops::people::BACKFILL_STEP)
        .await?
        > 0
    {}
    // Stored logs counted per second (each is read once per key).
    let backfill_per_s = first as f64 / started.elapsed().as_secs_f64();
    // The rest with both keys named: the rollups kept at ingest.
    let mut folds = Vec::new();
    let ingest_per_s = ingest(
        &store,
        &mut folds,
        integration.id,
        &mut traffic,
        logs,
        backend,
    )
    .await?;
    let fold = folds.iter().max().copied().unwrap_or_default();

    // Spend anomalies: every session judged (what the upkeep does, a step a round, once a
    // history is counted), then a minute with nothing new.
    let started = Instant::now();
    let (judged, flagged) =
        langguard_ops::anomalies::detect(store.as_ref(), now, Duration::MAX).await?;
    let judged_per_s = judged as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    langguard_ops::anomalies::detect(store.as_ref(), now, Duration::MAX).await?;
    let idle_detect = started.elapsed();

    let total = store.people(&query(PeopleSort::Spend, None)).await?.total;
    let top = store.people(&query(PeopleSort::Spend, None)).await?;
    let someone = top
        .people
        .get(10)
        .map(|p| p.identity.clone())
        .unwrap_or_default();
    let window = store.people_window_start().await?;
    let mut queries = Vec::new();
    for (what, sort, search) in [
        ("top 50 by spend", PeopleSort::Spend, None),
        ("top 50 by requests", PeopleSort::Requests, None),
        ("top 50 by last seen", PeopleSort::LastSeen, None),
        ("search \"user-0999\"", PeopleSort::Spend, Some("user-0999")),
    ] {
        let q = query(sort, search);
        let store = store.clone();
        let (median, slowest) = timed(runs, || {
            let store = store.clone();
            let q = q.clone();
            async move { Ok(store.people(&q).await?) }
        })
        .await?;
        queries.push((what, median, slowest));
    }
    let (median, slowest) = timed(runs, || {
        let store = store.clone();
        let someone = someone.clone();
        async move {
            store.person(IdentityKind::User, &someone).await?;
            store
                .identity_days(IdentityKind::User, &someone, window)
                .await?;
            Ok(store
                .identity_models(IdentityKind::User, &someone, window)
                .await?)
        }
    })
    .await?;
    queries.push(("one person's page", median, slowest));

    // The window moving on a day: subtracts the day that leaves it.
    let started = Instant::now();
    store.advance_people_window(now + DAY_MS).await?;
    let rollover = started.elapsed();

    for kind in [IdentityKind::User, IdentityKind::Team] {
        store.set_identity_key(kind, None, None).await?;
    }
    store.delete_integration(integration.id).await?;
    Ok(Figures {
        backend,
        ingest_without_per_s,
        ingest_per_s,
        queries,
        rollover,
        fold,
        backfill_per_s,
        users: total,
        judged_per_s,
        judged,
        flagged,
        idle_detect,
    })
}

pub async fn run(
    logs: usize,
    users: usize,
    runs: usize,
    database_url: Option<&str>,
) -> anyhow::Result<ExitCode> {
    println!(
        "bench people: {} logs over 30 days by {} users in {TEAMS} teams, user and team keys named; {runs} runs per query",
        format::count(logs as i64),
        format::count(users as i64)
    );
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("bench.db").to_string_lossy()).await?);
    let mut all = vec![measure("SQLite", sqlite, logs, users.max(1), runs).await?];
    // A long run: say what one backend measured before starting the next.
    eprintln!("  SQLite done: {}", all[0].summary());
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres")) {
        let pg: Arc<dyn Store> = Arc::new(PgStore::open(url).await?);
        all.push(measure("PostgreSQL", pg, logs, users.max(1), runs).await?);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    print!("{:<28}", "");
    for f in &all {
        print!(" {:>24}", f.backend);
    }
    println!();
    let row = |label: &str, cells: Vec<String>| {
        print!("{label:<28}");
        for c in cells {
            print!(" {c:>24}");
        }
        println!();
    };
    row(
        "users in the window",
        all.iter().map(|f| format::count(f.users as i64)).collect(),
    );
    row(
        "ingest, no key (logs/s)",
        all.iter()
            .map(|f| format::count(f.ingest_without_per_s as i64))
            .collect(),
    );
    row(
        "ingest, keys named (logs/s)",
        all.iter()
            .map(|f| format::count(f.ingest_per_s as i64))
            .collect(),
    );
    for (i, (what, _, _)) in all[0].queries.iter().enumerate() {
        row(
            &format!("{what} (ms)"),
            all.iter()
                .map(|f| {
                    let (_, median, slowest) = f.queries[i];
                    format!("{:.1} (max {:.1})", ms(median), ms(slowest))
                })
                .collect(),
        );
    }
    row(
        "slowest minute's fold (ms)",
        all.iter().map(|f| format!("{:.0}", ms(f.fold))).collect(),
    );
    row(
        "window moves a day (ms)",
        all.iter()
            .map(|f| format!("{:.0}", ms(f.rollover)))
            .collect(),
    );
    row(
        "backfill, both keys (logs/s)",
        all.iter()
            .map(|f| format::count(f.backfill_per_s as i64))
            .collect(),
    );
    row(
        "sessions judged / flagged",
        all.iter()
            .map(|f| {
                format!(
                    "{} / {}",
                    format::count(f.judged as i64),
                    format::count(f.flagged as i64)
                )
            })
            .collect(),
    );
    row(
        "judging (sessions/s)",
        all.iter()
            .map(|f| format::count(f.judged_per_s as i64))
            .collect(),
    );
    row(
        "a quiet minute's judging (ms)",
        all.iter()
            .map(|f| format!("{:.1}", ms(f.idle_detect)))
            .collect(),
    );
    Ok(ExitCode::SUCCESS)
}
