//! Hostile input: the checked-in corpus of raw requests, hostile payloads
//! behind a valid signature, and 10,000 random parameter sets signed by an
//! independent implementation written here (not the gateway's code).

mod common;

use std::path::PathBuf;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use hyper::Method;
use qcgate::auth::signature;
use rand::{Rng, RngExt};
use serde_json::Value;

/// Expands `@@PAD<n>@@` and `@@LEN@@` (see fixtures/hostile/README.md).
fn expand(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    while let Some(i) = find(&out, b"@@PAD") {
        let end = find(&out[i + 5..], b"@@")
            .map(|e| i + 5 + e)
            .expect("closed marker");
        let n: usize = std::str::from_utf8(&out[i + 5..end])
            .expect("n")
            .parse()
            .expect("n");
        out.splice(i..end + 2, std::iter::repeat_n(b'a', n));
    }
    if let Some(i) = find(&out, b"@@LEN@@") {
        let body_start = find(&out, b"\r\n\r\n").expect("head") + 4;
        let len = (out.len() - body_start).to_string();
        out.splice(i..i + 7, len.into_bytes());
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_json_envelope_and_the_gateway_still_serves() {
    let h = Harness::start(10).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "http"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus is checked in");
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let raw = expand(&std::fs::read(path).expect("read"));
        let answer = raw_exchange(&h, raw).await;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{name}: no HTTP answer: {answer:?}"));
        let status = head.split_whitespace().nth(1).unwrap_or("");
        assert!(status == "200" || status == "404", "{name}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{name}: {head}"
        );
        let v: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{name}: body is not JSON: {body:?}"));
        let code = v["ret_code"].as_i64().unwrap_or(0);
        assert!(code >= 1100, "{name}: {v}");
        assert!(v["message"].is_string(), "{name}: {v}");
    }
    let mut c = h.client_a();
    assert_eq!(
        c.call("DescribeJobs", &[]).await.expect("still serving")["ret_code"],
        0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_service_params_behind_a_valid_signature() {
    let h = Harness::start(10).await;
    h.add_cluster("cl-hostile1", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();
    let deep = "[".repeat(200_000);
    let nested_obj = format!("{}1{}", r#"{"a":"#.repeat(5_000), "}".repeat(5_000));
    let huge_value = format!(r#"{{"sync_way":"{}"}}"#, "x".repeat(100_000));
    let nul = "{\"sync_way\":\"full\u{0}\"}".to_string();
    for (name, sp) in [
        ("deep array", deep),
        ("deep object", nested_obj),
        ("huge value", huge_value),
        ("nul", nul),
    ] {
        let r = c
            .call_post(
                "RunClusterCustomService",
                &[
                    ("cluster", "cl-hostile1"),
                    ("service", "start_standby"),
                    ("service_params", &sp),
                    ("zone", ZONE),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r["ret_code"], 1100, "{name}: {r}");
    }
    assert_eq!(
        c.call("DescribeJobs", &[]).await.expect("still serving")["ret_code"],
        0
    );
    h.stop().await;
}

/// RFC 3986 encoding written out byte by byte, independent of the gateway's.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form encoding as Python's quote_plus: space as `+`.
fn enc_plus(s: &str) -> String {
    enc(s).replace("%20", "+")
}

fn independent_signature(
    secret: &str,
    verb: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let canonical: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let sts = format!("{verb}\n{path}\n{}", canonical.join("&"));
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(sts.as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn random_text(rng: &mut impl Rng, max: usize) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "9", "-", "_", ".", "~", " ", "+", "*", "/", "&", "=", "%", "@", ":", ",",
        "?", "#", "'", "\"", "é", "数据", "😀", "\\", "<", ">", "[", "]", "{", "}", "|", "^", "`",
        "!", "$", "(", ")", ";",
    ];
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_parameter_sets_signed_independently_all_verify() {
    let h = Harness::start(10).await;
    let mut c = h.client_a();
    let ak = h.a.access_key_id.clone();
    let sk = h.a.secret_access_key.expose().to_string();
    let mut rng = rand::rng();
    let mut as_it_stands = 0;
    for i in 0..10_000 {
        let post = i % 4 == 0;
        let path = if i % 3 == 0 { "/iaas" } else { "/iaas/" };
        let mut params: Vec<(String, String)> = vec![
            ("action".into(), "DescribeJobs".into()),
            ("access_key_id".into(), ak.clone()),
            (
                "time_stamp".into(),
                qcgate::clock::format_ts(qcgate::clock::now_unix()),
            ),
            ("signature_method".into(), "HmacSHA256".into()),
            ("signature_version".into(), "1".into()),
        ];
        for _ in 0..rng.random_range(0..8) {
            let name = format!("p_{}", random_text(&mut rng, 6));
            if params.iter().any(|(k, _)| *k == name) {
                continue;
            }
            params.push((name, random_text(&mut rng, 24)));
        }
        let sig = independent_signature(&sk, if post { "POST" } else { "GET" }, path, &params);
        // On the wire: unsorted, or for half the GETs sorted (as the SDKs
        // send them), with the signature last.
        let sorted = !post && i % 2 == 1;
        if sorted {
            params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        }
        let mut wire: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                if post {
                    format!("{}={}", enc_plus(k), enc_plus(v))
                } else {
                    format!("{}={}", enc(k), enc(v))
                }
            })
            .collect();
        if !sorted {
            wire.reverse();
        }
        wire.push(format!("signature={}", enc_plus(&sig)));
        let query = wire.join("&");
        as_it_stands += usize::from(!post && signature::canonical_in_raw(&query).is_some());
        let (_, body) = if post {
            c.send(Method::POST, path, Some(query.clone().into_bytes()))
                .await
                .expect("send")
        } else {
            c.send(Method::GET, &format!("{path}?{query}"), None)
                .await
                .expect("send")
        };
        let r: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            r["ret_code"], 0,
            "set {i} did not verify: {params:?} -> {r}"
        );
    }
    // Both ways of verifying were taken, many times each.
    assert!((300..4_000).contains(&as_it_stands), "{as_it_stands}");
    h.stop().await;
}

/// A body declared larger than the limit is refused at once, not after the
/// body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_declared_body_is_refused_at_once() {
    let h = Harness::start(0).await;
    let started = std::time::Instant::now();
    let reply = raw_exchange(
        &h,
        b"POST /iaas/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\naction=DescribeJobs"
            .to_vec(),
    )
    .await;
    assert!(
        reply.contains("\"ret_code\":1100") && reply.contains("larger than 1 MiB"),
        "{reply}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    h.stop().await;
}
