//! Keys and encrypted fields made by the tools Cloudflare's instructions use — Node's crypto
//! (with WebCrypto, as a Worker encrypts) and the OpenSSL command line — open with LangGuard,
//! and LangGuard's keys and fields open with them. Needs `node` and `openssl` on the PATH
//! (`.ci/run` installs them).

#![allow(clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use langguard_push::crypto::{generate_key_pair, FieldDecryptor, FieldSealer};
use serde_json::{json, Value};

fn script() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cloudflare_keys.mjs"
    ))
}

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test ({e}); install it (apt-get install nodejs openssl)"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_field_node_encrypts_for_a_node_key_opens_with_langguard() {
    let plaintext = r#"{"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
    let out = run(
        "node",
        &[script().to_str().unwrap(), "seal", plaintext],
        None,
    );
    let made: Value = serde_json::from_slice(&out).unwrap();
    let key = FieldDecryptor::from_pem(made["private_pem"].as_str().unwrap()).unwrap();
    assert_eq!(key.open(&made["field"]).unwrap(), plaintext.as_bytes());
    // And LangGuard seals for Node's public key the way Node opens.
    let sealer = FieldSealer::new(made["public_pem"].as_str().unwrap()).unwrap();
    let field = sealer.seal(b"{\"team\":\"search\"}");
    let opened = run(
        "node",
        &[script().to_str().unwrap(), "open"],
        Some(
            json!({"private_pem": made["private_pem"], "field": field})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(opened, b"{\"team\":\"search\"}");
}

#[test]
fn langguard_keys_work_in_node_and_openssl() {
    let pair = generate_key_pair().unwrap();
    // OpenSSL reads both halves.
    run(
        "openssl",
        &["pkey", "-pubin", "-noout"],
        Some(pair.public_pem.as_bytes()),
    );
    run(
        "openssl",
        &["pkey", "-noout"],
        Some(pair.private_pem.as_bytes()),
    );
    // Node (WebCrypto) opens what LangGuard's sealer made for LangGuard's public key.
    let field = FieldSealer::new(&pair.public_pem).unwrap().seal(b"hello");
    let opened = run(
        "node",
        &[script().to_str().unwrap(), "open"],
        Some(
            json!({"private_pem": pair.private_pem, "field": field})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(opened, b"hello");
}

#[test]
fn openssl_keys_in_both_pem_forms_open_fields() {
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = dir.path().join("pkcs8.pem");
    let pkcs1 = dir.path().join("pkcs1.pem");
    // `openssl genrsa` (PKCS#8 since OpenSSL 3) and its `-traditional` PKCS#1 form.
    run(
        "openssl",
        &["genrsa", "-out", pkcs8.to_str().unwrap(), "2048"],
        None,
    );
    run(
        "openssl",
        &[
            "rsa",
            "-in",
            pkcs8.to_str().unwrap(),
            "-traditional",
            "-out",
            pkcs1.to_str().unwrap(),
        ],
        None,
    );
    let public = run(
        "openssl",
        &["rsa", "-in", pkcs8.to_str().unwrap(), "-pubout"],
        None,
    );
    let public = String::from_utf8(public).unwrap();
    for private in [&pkcs8, &pkcs1] {
        let pem = std::fs::read_to_string(private).unwrap();
        let field = FieldSealer::new(&public).unwrap().seal(b"{\"a\":1}");
        let key = FieldDecryptor::from_pem(&pem).unwrap();
        assert_eq!(
            key.open(&field).unwrap(),
            b"{\"a\":1}",
            "{}",
            private.display()
        );
    }
}
