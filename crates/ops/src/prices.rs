//! Cost estimates: an admin's per-model prices, which override the bundled table.

use langguard_clock::format_ms;
use langguard_store::ModelPrice;
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::{Actor, OpsError, OpsResult, Services};

/// A model's price as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriceView {
    pub model: String,
    /// USD per 1,000 input tokens.
    pub input_per_1k: f64,
    /// USD per 1,000 output tokens.
    pub output_per_1k: f64,
    pub updated_at: String,
}

impl From<&ModelPrice> for PriceView {
    fn from(p: &ModelPrice) -> Self {
        Self {
            model: p.model.clone(),
            input_per_1k: p.input_per_1k,
            output_per_1k: p.output_per_1k,
            updated_at: format_ms(p.updated_at_ms),
        }
    }
}

/// A model name and two prices, checked.
fn check_price(model: &str, input: f64, output: f64) -> OpsResult<String> {
    let model = model.trim();
    if model.is_empty() || model.chars().count() > 200 {
        return Err(OpsError::invalid(
            "invalid_model",
            "the model name is 1 to 200 characters, exactly as the logs name it",
        ));
    }
    for (name, price) in [("input_per_1k", input), ("output_per_1k", output)] {
        if !price.is_finite() || !(0.0..=1_000.0).contains(&price) {
            return Err(OpsError::invalid(
                "invalid_price",
                format!("{name} is USD per 1,000 tokens, between 0 and 1000"),
            ));
        }
    }
    Ok(model.to_string())
}

/// Checks, saves and audits a model's price.
#[instrument(skip_all, fields(model = %model))]
pub async fn set(
    ops: &Services,
    actor: Actor<'_>,
    model: &str,
    input_per_1k: f64,
    output_per_1k: f64,
) -> OpsResult<ModelPrice> {
    let model = check_price(model, input_per_1k, output_per_1k)?;
    let price = ops
        .store
        .set_model_price(&model, input_per_1k, output_per_1k)
        .await?;
    ops.audit(
        actor,
        "cost_estimate.set",
        Some(format!("model:{model}")),
        json!({"input_per_1k": price.input_per_1k, "output_per_1k": price.output_per_1k}),
        None,
    )
    .await;
    Ok(price)
}

#[instrument(skip_all, fields(model = %model))]
pub async fn remove(ops: &Services, actor: Actor<'_>, model: &str) -> OpsResult<()> {
    ops.store.delete_model_price(model).await?;
    ops.audit(
        actor,
        "cost_estimate.deleted",
        Some(format!("model:{model}")),
        json!({}),
        None,
    )
    .await;
    Ok(())
}
