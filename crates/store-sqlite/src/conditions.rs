//! WHERE clauses built up with their parameters, shared by the metrics and trace queries.

use langguard_store::Scope;
use rusqlite::types::Value;

/// A WHERE clause built from a scope, with its parameters.
#[derive(Default)]
pub(crate) struct Conditions {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Conditions {
    pub fn push(&mut self, condition: &str, value: Value) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.params.push(value);
    }

    /// `time_column` is compared against `from`/`to`; metrics pass minute-aligned bounds so
    /// rollups and rows agree.
    pub fn scope(scope: &Scope, time_column: &str, from: Option<i64>, to: Option<i64>) -> Self {
        let mut c = Conditions::default();
        if let Some(from) = from {
            c.push(&format!("{time_column} >= ?"), Value::Integer(from));
        }
        if let Some(to) = to {
            c.push(&format!("{time_column} < ?"), Value::Integer(to));
        }
        if let Some(id) = scope.integration_id {
            c.push("integration_id = ?", Value::Integer(id));
        }
        for (column, value) in [
            ("gateway", &scope.gateway),
            ("provider", &scope.provider),
            ("model", &scope.model),
        ] {
            if let Some(v) = value {
                c.push(&format!("{column} = ?"), Value::Text(v.clone()));
            }
        }
        c
    }
}
