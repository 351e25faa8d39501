//! The security review's findings, each as a client reproduces it against the real server: a
//! fresh database, the Cloudflare emulator, and this test binary as the policy sandbox.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod policies;
mod requests;
mod sign_in;
mod webhook_targets;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
