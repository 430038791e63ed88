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
                     "--no-first-run", "--disable-quic", "--window-size=1280,860", format!("--user-data-dir={}", profile.display())]
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

/// Saves what the browser shows, under target/console (for a person to look at).
async fn screenshot(b: &fantoccini::Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("png");
}

/// The page's signer and the Rust one give the same signed query.
async fn same_signatures(b: &fantoccini::Client) {
    let vectors: Vec<Vec<(&str, &str)>> = vec![
        vec![("action", "DescribeJobs"), ("zone", "sh1a")],
        vec![
            ("action", "RunClusterCustomService"),
            ("service_params", r#"{"host":"a b","pw":"x+y=z&w"}"#),
        ],
        vec![
            ("action", "DescribeClusters"),
            ("search_word", "中文 ~*'()!"),
            ("clusters.1", "cl-abc"),
            ("clusters.2", "cl-def"),
        ],
    ];
    for (n, v) in vectors.into_iter().enumerate() {
        let mut params: Vec<(String, String)> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, val) in [
            ("access_key_id", "QYACCESSKEYIDEXAMPLE"),
            ("req_id", "0123456789abcdef0123456789abcdef"),
            ("time_stamp", "2026-12-05T10:00:00Z"),
            ("signature_method", "HmacSHA256"),
            ("signature_version", "1"),
            ("version", "1"),
        ] {
            params.push((k.to_string(), val.to_string()));
        }
        let secret = format!("SECRET{n}/+=example");
        let creds = qcgate::client::Credentials {
            access_key_id: "QYACCESSKEYIDEXAMPLE".into(),
            secret_access_key: qcgate::secret::Secret::new(secret.clone()),
        };
        let rust = qcgate::client::sign(&creds, "GET", "/iaas/", params.clone());
        let map: serde_json::Map<String, serde_json::Value> = params
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let js = b
            .execute(
                "return signedQuery(arguments[0], arguments[1])",
                vec![serde_json::Value::Object(map), secret.into()],
            )
            .await
            .expect("js");
        assert_eq!(js, serde_json::Value::String(rust), "vector {n}");
    }
}

async fn click(b: &fantoccini::Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .expect("element")
        .click()
        .await
        .expect("click");
}

async fn type_into(b: &fantoccini::Client, id: &str, text: &str) {
    let e = b.find(Locator::Id(id)).await.expect("field");
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_and_shows_jobs_and_clusters() {
    // Jobs take 3 s, so the page shows one waiting or running first.
    let h = Harness::start(3000).await;
    for id in ["cl-console0", "cl-console1", "cl-console2"] {
        h.add_cluster(id, ZONE, &h.owner_a);
    }
    let mut c = h.client_a();
    let (_driver, port) = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let b = browser(port, profile.path()).await;
    let base = h.endpoint.trim_end_matches("/iaas/").to_string();
    b.goto(&format!("{base}/console/")).await.expect("page");
    same_signatures(&b).await;

    // A wrong secret is an error on the page, not a signed-in view.
    type_into(&b, "key-id", &h.a.access_key_id).await;
    type_into(&b, "secret", "not-the-secret").await;
    click(&b, "#signin-button").await;
    let err = text_of(&b, "#error", |t| !t.is_empty()).await;
    assert!(err.contains("AuthFailure"), "{err}");
    screenshot(&b, "wrong-secret").await;

    // The right one; a job submitted now goes from waiting or running to
    // successful on the page (it polls), and its detail has no password.
    type_into(&b, "secret", h.a.secret_access_key.expose()).await;
    click(&b, "#signin-button").await;
    text_of(&b, "#jobs-updated", |t| t.contains("job(s)")).await;
    let r = start_standby(&mut c, "cl-console1", "cl-console0").await;
    let job = r["job_id"].as_str().expect("job").to_string();
    let row = format!("#jobs-table tr[data-job='{job}']");
    text_of(&b, &row, |t| t.contains("pending") || t.contains("working")).await;
    let shown = text_of(&b, &row, |t| t.contains("successful")).await;
    assert!(shown.contains("RunClusterCustomService"), "{shown}");
    click(&b, &row).await;
    let detail = text_of(&b, "#job-detail", |t| t.contains("directive")).await;
    assert!(
        detail.contains("start_standby") && !detail.contains("Passwd@123"),
        "{detail}"
    );
    screenshot(&b, "jobs").await;

    // The clusters' tree, seed 003's A └── B └── C, simulated.
    let r = start_standby(&mut c, "cl-console2", "cl-console1").await;
    wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    click(&b, "#tabs button[data-tab='clusters']").await;
    let tree = text_of(&b, "#clusters-list", |t| t.contains("cl-console2")).await;
    assert!(
        tree.starts_with("cl-console0 (PRIMARY")
            && tree.contains("└── cl-console1 (STANDBY, sync NORMAL")
            && tree.contains("    └── cl-console2 (STANDBY")
            && tree.contains("simulated"),
        "{tree}"
    );
    screenshot(&b, "clusters").await;

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
