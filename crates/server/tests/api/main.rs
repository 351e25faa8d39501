//! The REST API as a client uses it: the real server on a random port, a fresh database and
//! the Cloudflare emulator. One module per area; every scenario runs on both backends.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod access;
mod alerts;
mod buckets;
mod budgets;
mod channels;
mod contract;
mod integrations;
mod people;
mod policies;
mod prices;
mod push;
mod push_setup;
mod saved_views;
mod traces;
mod webhooks;

pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

use common::*;
use langguard_cf_emulator::Faults;
use langguard_server::webhooks::WebhookSettings;
use langguard_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Everything the Trace Explorer lists, page by page.
async fn all_traces(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    all_pages(app, token, &format!("/api/v1/traces?limit=100&{query}")).await
}
