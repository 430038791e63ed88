//! The web console in a real browser (Debian's Chromium, driven through
//! chromedriver): a wrong secret says so; the right one shows the jobs,
//! live, and a job's detail, and the clusters' tree; no cookie is set.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{ClientBuilder, Locator};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (install chromium and chromium-driver)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

async fn browser(port: u16, profile: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", format!("--user-data-dir={}", profile.display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

/// Waits until the element's text satisfies `pred`.
async fn text_of(b: &fantoccini::Client, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && pred(&t)
        {
            return t;
        }
        if Instant::now() > deadline {
            let page = b.source().await.unwrap_or_default();
            panic!("{css} never showed what was expected; the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_and_shows_jobs_and_clusters() {
    let h = Harness::start(0).await;
    h.add_cluster("cl-console1", ZONE, &h.owner_a);
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-console1", "cl-9np7ig3g").await;
    let job = r["job_id"].as_str().expect("job").to_string();
    wait_job(&mut c, &job, Duration::from_secs(10)).await;

    let (_driver, port) = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let b = browser(port, profile.path()).await;
    let base = h.endpoint.trim_end_matches("/iaas/").to_string();
    b.goto(&format!("{base}/console/")).await.expect("page");

    // A wrong secret is an error on the page, not a signed-in view.
    b.find(Locator::Id("key-id"))
        .await
        .expect("field")
        .send_keys(&h.a.access_key_id)
        .await
        .expect("type");
    b.find(Locator::Id("secret"))
        .await
        .expect("field")
        .send_keys("not-the-secret")
        .await
        .expect("type");
    b.find(Locator::Id("signin-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let err = text_of(&b, "#error", |t| !t.is_empty()).await;
    assert!(err.contains("AuthFailure"), "{err}");

    // The right one: the job, its status, its detail (no password).
    let secret = b.find(Locator::Id("secret")).await.expect("field");
    secret.clear().await.expect("clear");
    secret
        .send_keys(h.a.secret_access_key.expose())
        .await
        .expect("type");
    b.find(Locator::Id("signin-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let row = format!("#jobs-table tr[data-job='{job}']");
    let shown = text_of(&b, &row, |t| t.contains("successful")).await;
    assert!(shown.contains("RunClusterCustomService"), "{shown}");
    b.find(Locator::Css(&row))
        .await
        .expect("row")
        .click()
        .await
        .expect("click");
    let detail = text_of(&b, "#job-detail", |t| t.contains("directive")).await;
    assert!(
        detail.contains("start_standby") && !detail.contains("Passwd@123"),
        "{detail}"
    );

    // A job submitted now appears without reloading (the list polls).
    let r = rccs(&mut c, "cl-console1", "stop_standby", "", "").await;
    let second = r["job_id"].as_str().expect("job").to_string();
    text_of(&b, &format!("#jobs-table tr[data-job='{second}']"), |t| {
        t.contains("successful")
    })
    .await;

    // The clusters' tree says the cluster is simulated.
    b.find(Locator::Css("#tabs button[data-tab='clusters']"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    let tree = text_of(&b, "#clusters-list", |t| t.contains("cl-console1")).await;
    assert!(tree.contains("simulated"), "{tree}");

    // The key is in this tab's session storage, never in a cookie.
    let cookie = b
        .execute("return document.cookie", vec![])
        .await
        .expect("js");
    assert_eq!(cookie, serde_json::json!(""));
    let stored = b
        .execute("return sessionStorage.getItem('qcgate.id')", vec![])
        .await
        .expect("js");
    assert_eq!(stored, serde_json::json!(h.a.access_key_id));
    b.close().await.expect("close");
    h.stop().await;
}
