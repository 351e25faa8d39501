//! WHERE clauses built up with their numbered parameters (`$1`, `$2`, …), shared by the
//! metrics, trace and violation queries.

use langguard_store::Scope;
use tokio_postgres::types::ToSql;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause (each condition starts with ` AND `) with its parameters.
#[derive(Default)]
pub(crate) struct Conditions {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Conditions {
    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    pub fn and(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }

    /// The parameters as the driver takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// `time_column` is compared against `from`/`to`; metrics pass minute-aligned bounds so
    /// rollups and rows agree. `prefix` qualifies the columns (`"i."`) when a query joins.
    pub fn scope(
        scope: &Scope,
        prefix: &str,
        time_column: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Self {
        let mut c = Conditions::default();
        if let Some(from) = from {
            let p = c.bind(from);
            c.and(&format!("{prefix}{time_column} >= {p}"));
        }
        if let Some(to) = to {
            let p = c.bind(to);
            c.and(&format!("{prefix}{time_column} < {p}"));
        }
        if let Some(id) = scope.integration_id {
            let p = c.bind(id);
            c.and(&format!("{prefix}integration_id = {p}"));
        }
        for (column, value) in [
            ("gateway", &scope.gateway),
            ("provider", &scope.provider),
            ("model", &scope.model),
        ] {
            if let Some(v) = value {
                let p = c.bind(v.clone());
                c.and(&format!("{prefix}{column} = {p}"));
            }
        }
        c
    }
}
