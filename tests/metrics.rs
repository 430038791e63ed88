//! `GET /metrics`: Prometheus text from a real gateway, on loopback only by
//! default, never with a secret or an action name a caller made up.

mod common;

use std::time::Duration;

use common::*;

async fn scrape(h: &Harness) -> String {
    raw_exchange(
        h,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_jobs_are_counted() {
    let h = Harness::start(0).await;
    h.add_cluster("cl-metric01", ZONE, &h.owner_a);
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-metric01", "cl-9np7ig3g").await;
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful");
    let r = c.call("NoSuchActionXyz", &[]).await.expect("reply");
    assert_eq!(r["ret_code"], 1101);
    let text = scrape(&h).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for want in [
        "qcgate_requests_total{action=\"RunClusterCustomService\",ret_code=\"0\"} 1",
        "qcgate_requests_total{action=\"unknown\",ret_code=\"1101\"} 1",
        "qcgate_request_duration_seconds_count{action=\"DescribeJobs\"}",
        "qcgate_jobs_finished_total{service=\"start_standby\",status=\"successful\"} 1",
        "qcgate_job_duration_seconds_count{service=\"start_standby\"} 1",
        "qcgate_jobs_open{status=\"pending\"} 0",
        "# EOF",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    assert!(
        !text.contains("NoSuchActionXyz") && !text.contains("Passwd@123"),
        "{text}"
    );
    assert!(!text.contains(h.a.secret_access_key.expose()), "no secret");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let h = Harness::start_with(dir, |c| c.metrics.serve = "off".into()).await;
    let text = scrape(&h).await;
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    h.stop().await;
}
