//! Fresh databases for tests: each test gets its own database on the PostgreSQL server named
//! by [`TEST_DATABASE_ENV`], dropped when the test ends. Used by this crate's suite, the API
//! tests and the multi-instance tests.

use tokio_postgres::NoTls;

/// Names a PostgreSQL server tests may create databases on, as a URL to a database that
/// exists (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
pub const TEST_DATABASE_ENV: &str = "LANGGUARD_TEST_DATABASE_URL";

/// A database that exists for one test and is dropped with this value.
#[derive(Debug)]
pub struct TempDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh database when [`TEST_DATABASE_ENV`] is set. Without it the test is skipped
    /// with a visible message — unless `LANGGUARD_REQUIRE_POSTGRES` is set (CI), where a
    /// skipped backend would pass for a tested one.
    pub async fn create(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(TEST_DATABASE_ENV) else {
            if std::env::var_os("LANGGUARD_REQUIRE_POSTGRES").is_some() {
                panic!("LANGGUARD_REQUIRE_POSTGRES is set but {TEST_DATABASE_ENV} is not");
            }
            eprintln!(
                "SKIPPED {test} on PostgreSQL: set {TEST_DATABASE_ENV}=postgres://user@host:5432/postgres to run it"
            );
            return None;
        };
        let nonce = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!(
            "lg_test_{}_{}",
            std::process::id(),
            nonce % 1_000_000_000_000
        );
        let client = connect(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot create a test database on {TEST_DATABASE_ENV}: {e}")
            });
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop runs outside async; a thread with its own runtime does the async work.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let client = connect(&admin_url).await;
                if let Err(e) = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                {
                    eprintln!("could not drop test database {name}: {e}");
                }
            });
        });
        let _ = dropped.join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {TEST_DATABASE_ENV}: {e}"));
    tokio::spawn(connection);
    client
}

/// The same server URL with another database (the path part replaced).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_replaces_the_path() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
