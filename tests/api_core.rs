//! The core path over real HTTP: start_standby → poll → successful, and every
//! error code path, each compared with its golden file under fixtures/errors.

mod common;

use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use qcgate::clock::{format_ts, now_unix};
use serde_json::Value;

const SOURCE: &str = "cl-9np7ig3g";

async fn harness() -> Harness {
    let h = Harness::start(300).await;
    h.add_cluster("cl-ouhutv70", ZONE, &h.owner_a.clone());
    h
}

fn rccs<'a>(cluster: &'a str, service: &'a str, sp: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("cluster", cluster),
        ("role", "maininstance"),
        ("service", service),
        ("service_params", sp),
        ("zone", ZONE),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_standby_over_get_runs_to_successful_and_records_the_effect() {
    let h = harness().await;
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-ouhutv70", SOURCE).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["action"], "RunClusterCustomServiceResponse");
    assert_eq!(r["service"], "start_standby");
    assert_eq!(r["role"], "maininstance");
    assert_eq!(r["cluster_id"], "cl-ouhutv70");
    let job_id = r["job_id"].as_str().expect("job_id").to_string();
    assert!(
        qcgate::ids::is_job_id(&job_id) && job_id.len() == 13,
        "{job_id}"
    );

    let (j, seen) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(
        seen.contains(&"working".to_string()),
        "statuses seen: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| ["pending", "working", "successful"].contains(&s.as_str()))
    );
    assert_eq!(j["job_action"], "RunClusterCustomService");
    assert_eq!(j["resource_ids"], "cl-ouhutv70");
    assert_eq!(j["owner"].as_str(), Some(h.owner_a.as_str()));
    assert_eq!(j["error_codes"], "");
    for t in ["create_time", "status_time"] {
        let v = j[t].as_str().expect("time");
        assert!(
            qcgate::clock::parse_ts(v).is_some() && v.ends_with('Z') && v.len() == 20,
            "{t}={v}"
        );
    }
    let directive = j["directive"].as_str().expect("directive");
    let d: Value = serde_json::from_str(directive).expect("directive is JSON");
    assert_eq!(d["service"], "start_standby");
    for secret in ["Passwd@123", "password", &h.a.access_key_id] {
        assert!(
            !directive.contains(secret),
            "directive leaks {secret}: {directive}"
        );
    }
    for key in ["signature", "access_key_id"] {
        assert!(d.get(key).is_none(), "directive keeps {key}: {directive}");
    }

    let cl = h.cluster("cl-ouhutv70");
    assert_eq!(cl.dr_role, "standby");
    assert_eq!(cl.standby_of.as_deref(), Some(SOURCE));
    assert_eq!(cl.sync_way.as_deref(), Some("full"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_standby_over_post_with_increment_and_passwd() {
    let h = harness().await;
    let mut c = h.client_a();
    let sp = r#"{"sync_way":"increment","zone":"sh1a","host":"10.0.0.5","cluster_id":"cl-9np7ig3g","user":"repl","passwd":"Pass word+&=%","port":"3307"}"#;
    let r = c
        .call_post(
            "RunClusterCustomService",
            &rccs("cl-ouhutv70", "start_standby", sp),
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    let job_id = r["job_id"].as_str().expect("job_id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful");
    assert_eq!(
        h.cluster("cl-ouhutv70").sync_way.as_deref(),
        Some("increment")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_defaults_to_the_services_role_when_omitted() {
    let h = harness().await;
    let mut c = h.client_a();
    let sp = standby_params(SOURCE);
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", "cl-ouhutv70"),
                ("service", "start_standby"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["role"], "maininstance");
    h.stop().await;
}

/// Sends RunClusterCustomService with `sp` and compares the error with its golden file.
async fn expect_rccs_error(c: &mut qcgate::client::Client, sp: &str, code: i64, golden: &str) {
    let r = c
        .call(
            "RunClusterCustomService",
            &rccs("cl-ouhutv70", "start_standby", sp),
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], code, "{golden}: {r}");
    assert!(
        r.get("action").is_none(),
        "error envelopes carry no action: {r}"
    );
    assert!(
        !r.to_string().contains("Passwd@123"),
        "{golden} leaks the password: {r}"
    );
    assert_golden(golden, &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_params_validation_names_the_faulty_field() {
    let h = harness().await;
    let mut c = h.client_a();
    let good = serde_json::from_str::<Value>(&standby_params(SOURCE)).expect("json");
    let with = |k: &str, v: Value| {
        let mut m = good.clone();
        m[k] = v;
        m.to_string()
    };
    let without = |k: &str| {
        let mut m = good.clone();
        m.as_object_mut().expect("obj").remove(k);
        m.to_string()
    };
    expect_rccs_error(
        &mut c,
        r#"{"sync_way":"full","password":"Passwd@123""#,
        1100,
        "service_params_bad_json",
    )
    .await;
    expect_rccs_error(&mut c, "[1,2]", 1100, "service_params_not_object").await;
    expect_rccs_error(&mut c, "", 1100, "service_params_missing").await;
    expect_rccs_error(&mut c, &without("sync_way"), 1100, "sync_way_missing").await;
    expect_rccs_error(
        &mut c,
        &with("sync_way", "half".into()),
        1100,
        "sync_way_invalid",
    )
    .await;
    expect_rccs_error(
        &mut c,
        &with("zone", "SH1A".into()),
        1100,
        "zone_field_invalid",
    )
    .await;
    expect_rccs_error(&mut c, &with("host", "".into()), 1100, "host_missing").await;
    expect_rccs_error(&mut c, &with("host", "a b".into()), 1100, "host_invalid").await;
    expect_rccs_error(
        &mut c,
        &with("cluster_id", "i-12345678".into()),
        1100,
        "cluster_id_invalid",
    )
    .await;
    expect_rccs_error(
        &mut c,
        &with("cluster_id", "cl-ouhutv70".into()),
        1100,
        "cluster_id_self",
    )
    .await;
    expect_rccs_error(&mut c, &with("user", 5.into()), 1100, "user_not_string").await;
    expect_rccs_error(&mut c, &without("password"), 1100, "password_missing").await;
    expect_rccs_error(
        &mut c,
        &with("passwd", "Other@123".into()),
        1100,
        "password_disagree",
    )
    .await;
    expect_rccs_error(&mut c, &with("port", 0.into()), 1100, "port_zero").await;
    expect_rccs_error(&mut c, &with("port", 65536.into()), 1100, "port_too_big").await;
    expect_rccs_error(
        &mut c,
        &with("port", "abc".into()),
        1100,
        "port_not_integer",
    )
    .await;
    expect_rccs_error(&mut c, &with("extra", 1.into()), 1100, "unknown_field").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_level_errors() {
    let h = harness().await;
    let other_owner = h.owner_b.clone();
    h.add_cluster("cl-foreign1", ZONE, &other_owner);
    h.add_cluster("cl-otherzn1", "pek3a", &h.owner_a.clone());
    let mut c = h.client_a();
    let sp = standby_params(SOURCE);

    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, i64);
    let cases: Vec<Case> = vec![
        (
            "cluster_missing",
            vec![
                ("service", "start_standby"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
            1100,
        ),
        (
            "service_missing",
            vec![
                ("cluster", "cl-ouhutv70"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
            1100,
        ),
        (
            "zone_missing",
            vec![
                ("cluster", "cl-ouhutv70"),
                ("service", "start_standby"),
                ("service_params", &sp),
            ],
            1100,
        ),
        (
            "zone_upper_case",
            rccs_zone("cl-ouhutv70", "start_standby", &sp, "SH1A"),
            1100,
        ),
        (
            "unknown_service",
            rccs("cl-ouhutv70", "start_standbyy", &sp),
            1100,
        ),
        (
            "cluster_not_found",
            rccs("cl-nothere1", "start_standby", &sp),
            2100,
        ),
        (
            "cluster_foreign",
            rccs("cl-foreign1", "start_standby", &sp),
            2100,
        ),
        (
            "cluster_other_zone",
            rccs("cl-otherzn1", "start_standby", &sp),
            2100,
        ),
        (
            "wrong_role",
            vec![
                ("cluster", "cl-ouhutv70"),
                ("role", "readinstance"),
                ("service", "start_standby"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
            1100,
        ),
    ];
    for (name, params, code) in cases {
        let r = c
            .call("RunClusterCustomService", &params)
            .await
            .expect("reply");
        assert_eq!(r["ret_code"], code, "{name}: {r}");
        assert_golden(name, &r);
    }

    // A foreign cluster looks exactly like a missing one.
    let foreign = c
        .call(
            "RunClusterCustomService",
            &rccs("cl-foreign1", "start_standby", &sp),
        )
        .await
        .expect("r");
    let missing = c
        .call(
            "RunClusterCustomService",
            &rccs("cl-nothere1", "start_standby", &sp),
        )
        .await
        .expect("r");
    assert_eq!(
        foreign.to_string().replace("cl-foreign1", "ID"),
        missing.to_string().replace("cl-nothere1", "ID")
    );

    let r = c
        .call("DescribeJobz", &[("zone", ZONE)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1101, "{r}");
    assert_golden("unknown_action", &r);
    h.stop().await;
}

fn rccs_zone<'a>(
    cluster: &'a str,
    service: &'a str,
    sp: &'a str,
    zone: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut v = rccs(cluster, service, sp);
    v.retain(|(k, _)| *k != "zone");
    v.push(("zone", zone));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_refusal_is_1400_when_already_a_standby() {
    let h = harness().await;
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-ouhutv70", SOURCE).await;
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful");
    let r = start_standby(&mut c, "cl-ouhutv70", "cl-another1").await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    assert_golden("already_standby", &r);

    // stop_standby: the reverse, then refused on a cluster that is no standby.
    let stop = [
        ("cluster", "cl-ouhutv70"),
        ("service", "stop_standby"),
        ("zone", ZONE),
    ];
    let r = c
        .call("RunClusterCustomService", &stop)
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful");
    assert_eq!(h.cluster("cl-ouhutv70").dr_role, "primary");
    let r = c
        .call("RunClusterCustomService", &stop)
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1400, "{r}");
    assert_golden("not_a_standby", &r);
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", "cl-ouhutv70"),
                ("service", "stop_standby"),
                ("service_params", r#"{"x":1}"#),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1100, "stop_standby takes no fields: {r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_job_queued_before_the_first_ran_fails_at_run_time() {
    // Both pass validation (the cluster is not yet a standby); the lane runs
    // them in order and the model refuses the second.
    let h = harness().await;
    let mut c = h.client_a();
    let first = start_standby(&mut c, "cl-ouhutv70", SOURCE).await;
    let second = start_standby(&mut c, "cl-ouhutv70", "cl-another1").await;
    assert_eq!(second["ret_code"], 0, "{second}");
    let (j1, _) = wait_job(
        &mut c,
        first["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    let (j2, _) = wait_job(
        &mut c,
        second["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j1["status"], "successful");
    assert_eq!(j2["status"], "failed", "{j2}");
    assert_eq!(j2["error_codes"], "1400");
    assert!(
        j2["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("already a standby"),
        "{j2}"
    );
    // the first one's effect stands
    assert_eq!(h.cluster("cl-ouhutv70").standby_of.as_deref(), Some(SOURCE));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors() {
    let h = harness().await;
    let ak = h.a.access_key_id.clone();

    let mut wrong = h.client_with(&ak, "not-the-secret");
    let r = wrong
        .call("DescribeJobs", &[("zone", ZONE)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1200, "{r}");
    assert_golden("wrong_secret", &r);

    let mut unknown = h.client_with("QYUNKNOWNKEYAAAAAAAA", "whatever");
    let r2 = unknown
        .call("DescribeJobs", &[("zone", ZONE)])
        .await
        .expect("reply");
    assert_eq!(r2, r, "unknown key and wrong secret answer the same");

    let mut c = h.client_a();
    let stale = format_ts(now_unix() - 120);
    let r = c
        .call("DescribeJobs", &[("zone", ZONE), ("time_stamp", &stale)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1300, "{r}");
    assert_golden("time_stamp_stale", &r);

    let future = format_ts(now_unix() + 120);
    let r = c
        .call("DescribeJobs", &[("zone", ZONE), ("time_stamp", &future)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1300, "{r}");
    assert_golden("time_stamp_future", &r);

    // The CLI's style: an old time_stamp with a later `expires` is valid…
    let old = format_ts(now_unix() - 600);
    let later = format_ts(now_unix() + 600);
    let r = c
        .call(
            "DescribeJobs",
            &[("zone", ZONE), ("time_stamp", &old), ("expires", &later)],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    // …until it expires.
    let past = format_ts(now_unix() - 5);
    let r = c
        .call(
            "DescribeJobs",
            &[("zone", ZONE), ("time_stamp", &old), ("expires", &past)],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1300, "{r}");
    assert_golden("expired", &r);

    let r = c
        .call(
            "DescribeJobs",
            &[("zone", ZONE), ("time_stamp", "yesterday")],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert_golden("time_stamp_malformed", &r);

    let r = c
        .call(
            "DescribeJobs",
            &[("zone", ZONE), ("signature_method", "HmacMD5")],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert_golden("signature_method_invalid", &r);

    // HmacSHA1 is accepted.
    let r = c
        .call(
            "DescribeJobs",
            &[("zone", ZONE), ("signature_method", "HmacSHA1")],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");

    // Missing common parameters.
    let (_, body) = c
        .send(Method::GET, "/iaas/?action=DescribeJobs&zone=sh1a", None)
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(r["ret_code"], 1100);
    assert_golden("access_key_id_missing", &r);
    let q = format!("/iaas/?action=DescribeJobs&access_key_id={ak}&zone=sh1a&signature=abc");
    let (_, body) = c.send(Method::GET, &q, None).await.expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_golden("time_stamp_missing", &r);
    let signed = qcgate::client::sign(
        &h.a,
        "GET",
        "/iaas/",
        vec![("action".into(), "DescribeJobs".into())],
    );
    let unsigned = signed
        .split("&signature=")
        .next()
        .expect("query")
        .to_string();
    let (_, body) = c
        .send(Method::GET, &format!("/iaas/?{unsigned}"), None)
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_golden("signature_missing", &r);

    // Signed for /iaas/ but sent to /iaas: the path is part of the signature.
    let (_, body) = c
        .send(Method::GET, &format!("/iaas?{signed}"), None)
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(r["ret_code"], 1200, "{r}");
    // …and a request signed for /iaas works there.
    let signed = qcgate::client::sign(
        &h.a,
        "GET",
        "/iaas",
        vec![("action".into(), "DescribeJobs".into())],
    );
    let (_, body) = c
        .send(Method::GET, &format!("/iaas?{signed}"), None)
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(r["ret_code"], 0, "{r}");

    // A tampered parameter breaks the signature.
    let signed = qcgate::client::sign(
        &h.a,
        "GET",
        "/iaas/",
        vec![
            ("action".into(), "DescribeJobs".into()),
            ("limit".into(), "5".into()),
        ],
    );
    let (_, body) = c
        .send(
            Method::GET,
            &format!("/iaas/?{}", signed.replace("limit=5", "limit=6")),
            None,
        )
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(r["ret_code"], 1200, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused() {
    let h = harness().await;
    let mut c = h.client_b();
    assert_eq!(
        c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r")["ret_code"],
        0
    );
    let id = h.b.access_key_id.clone();
    assert!(h.local().revoke_key(&id).expect("revoke"));
    assert_eq!(
        c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r")["ret_code"],
        1200
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_envelopes() {
    let h = harness().await;
    let mut c = h.client_a();

    let check = |name: &'static str, status: StatusCode, body: &[u8], code: i64| {
        assert_eq!(status, StatusCode::OK, "{name}");
        let r: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("{name}: not JSON"));
        assert_eq!(r["ret_code"], code, "{name}: {r}");
        assert_golden(name, &r);
    };
    let (s, b) = c
        .send(
            Method::GET,
            "/iaas/?action=DescribeJobs&zone=a&zone=b",
            None,
        )
        .await
        .expect("send");
    check("repeated_key", s, &b, 1100);
    let (s, b) = c
        .send(Method::GET, "/iaas/?action=DescribeJobs&zone=%FF%FE", None)
        .await
        .expect("send");
    check("invalid_utf8", s, &b, 1100);
    // Request lines over 64 KiB (the http crate's limit) and over 1 MiB.
    for (name, n) in [
        ("query_over_64k", 70_000),
        ("query_too_large", 1024 * 1024 + 1),
    ] {
        let raw = raw_exchange(
            &h,
            format!(
                "GET /iaas/?action=DescribeJobs&pad={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(n)
            )
            .into_bytes(),
        )
        .await;
        let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{name}: {head}");
        check(name, StatusCode::OK, body.as_bytes(), 1100);
    }
    let raw = raw_exchange(&h, b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
    let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
    assert!(head.contains("application/json"), "{head}");
    check("not_http", StatusCode::OK, body.as_bytes(), 1100);
    let body = format!("action=DescribeJobs&pad={}", "a".repeat(1024 * 1024 + 1)).into_bytes();
    let (s, b) = c
        .send(Method::POST, "/iaas/", Some(body))
        .await
        .expect("send");
    check("body_too_large", s, &b, 1100);
    let (s, b) = c.send(Method::PUT, "/iaas/", None).await.expect("send");
    check("wrong_method", s, &b, 1101);
    let (s, b) = c.send(Method::POST, "/iaas/?", None).await.expect("send");
    check("post_not_form", s, &b, 1100);

    let (s, b) = c.send(Method::GET, "/nowhere", None).await.expect("send");
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r: Value = serde_json::from_slice(&b).expect("404 body is JSON");
    assert_golden("not_found_path", &r);

    let (s, b) = c.send(Method::GET, "/healthz", None).await.expect("send");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b[..], br#"{"status":"ok"}"#);

    // The server still serves after all of that.
    assert_eq!(
        c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r")["ret_code"],
        0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_is_exactly_application_json() {
    let h = harness().await;
    let stream = tokio::net::TcpStream::connect(
        h.endpoint
            .trim_start_matches("http://")
            .trim_end_matches("/iaas/"),
    )
    .await
    .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    for path in ["/iaas/?action=DescribeJobs", "/iaas?x=1", "/elsewhere"] {
        let req = hyper::Request::get(path)
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("req");
        sender.ready().await.expect("ready");
        let resp = sender.send_request(req).await.expect("resp");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
    }
    h.stop().await;
}
