//! The load generator: many keep-alive connections, each sending requests
//! back to back for a fixed time, latencies in an HDR histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::HeaderValue;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use indicatif::ProgressBar;
use tokio::net::TcpStream;

/// One request: GET with a path and query, or POST with a form body.
/// Cloning one shares its bytes, so replaying a pre-signed request costs no
/// copy and no URI parse.
#[derive(Clone)]
pub struct Planned {
    pub uri: Uri,
    pub form: Option<Bytes>,
}

impl Planned {
    /// A GET of `path_and_query`. One that does not parse becomes `/`, which
    /// every reply counts as failed.
    pub fn get(path_and_query: String) -> Planned {
        Planned {
            uri: Uri::try_from(path_and_query).unwrap_or_default(),
            form: None,
        }
    }
}

/// Makes the `n`-th request of connection `conn`.
pub type Planner = Arc<dyn Fn(usize, u64) -> Planned + Send + Sync>;

/// What a reply must contain to count as a success.
pub const OK_MARK: &[u8] = b"\"ret_code\":0";

#[derive(Debug)]
pub struct LoadResult {
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
    /// Bodies of the successful replies, when asked to keep them.
    pub kept: Vec<Bytes>,
    /// CPU time the server process spent during the run (user + system).
    /// None when the server's process is not known (`--endpoint`).
    pub server_cpu_us: Option<u64>,
    /// The same, by thread name; empty when the process is not known.
    pub server_thread_cpu_us: std::collections::BTreeMap<String, u64>,
    /// CPU time this process (the load generator) spent during the run.
    pub load_cpu_us: u64,
    /// The share of the machine's CPU time nobody used during the run (idle
    /// or waiting on the disk), 0–1; None where `/proc/stat` is unreadable.
    pub machine_idle: Option<f64>,
}

impl LoadResult {
    pub fn empty() -> LoadResult {
        LoadResult {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            hist: hist(),
            kept: Vec::new(),
            server_cpu_us: None,
            server_thread_cpu_us: Default::default(),
            load_cpu_us: 0,
            machine_idle: None,
        }
    }

    pub fn rps(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

fn hist() -> Histogram<u64> {
    // 1 µs … 60 s, 3 significant digits; these bounds are valid.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// How a load phase is driven.
#[derive(Clone, Copy)]
pub struct Shape {
    pub conns: usize,
    pub duration: Duration,
    /// Per-connection interval between requests; `None` sends back to back.
    pub pace: Option<Duration>,
    pub keep_bodies: bool,
}

pub async fn run(
    authority: &str,
    shape: Shape,
    plan: Planner,
    bar: &ProgressBar,
) -> std::io::Result<LoadResult> {
    let Shape {
        conns,
        duration,
        pace,
        keep_bodies,
    } = shape;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (authority, plan, done) = (authority.to_string(), plan.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            connection(&authority, c, deadline, plan, done, keep_bodies, pace).await
        }));
    }
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let elapsed = start.elapsed();
                bar.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
                bar.set_message(format!(
                    "{:.0} req/s",
                    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
                ));
            }
        })
    };
    let mut total = LoadResult::empty();
    for t in tasks {
        let r = t.await.map_err(std::io::Error::other)??;
        total.ok += r.ok;
        total.failed += r.failed;
        let _ = total.hist.add(&r.hist);
        total.kept.extend(r.kept);
    }
    ticker.abort();
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn connection(
    authority: &str,
    conn: usize,
    deadline: Instant,
    plan: Planner,
    done: Arc<AtomicU64>,
    keep_bodies: bool,
    pace: Option<Duration>,
) -> std::io::Result<LoadResult> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(driver);
    let host = HeaderValue::from_str(authority).map_err(std::io::Error::other)?;
    let mut r = LoadResult::empty();
    let mut n = 0u64;
    let mut next = tokio::time::Instant::now();
    while Instant::now() < deadline {
        if let Some(p) = pace {
            tokio::time::sleep_until(next).await;
            next += p;
        }
        let planned = plan(conn, n);
        n += 1;
        let mut req = Request::builder()
            .uri(planned.uri)
            .header(hyper::header::HOST, host.clone());
        let body = match planned.form {
            Some(f) => {
                req = req
                    .method("POST")
                    .header("content-type", "application/x-www-form-urlencoded");
                f
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(std::io::Error::other)?;
        let sent = Instant::now();
        if sender.ready().await.is_err() {
            break;
        }
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(_) => break,
        };
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => break,
        };
        let micros = sent.elapsed().as_micros() as u64;
        // From the end: replies put `ret_code` after `job_set`, their longest field.
        if memchr::memmem::rfind(&bytes, OK_MARK).is_some() {
            r.ok += 1;
            let _ = r.hist.record(micros.max(1));
            if keep_bodies {
                // A copy: the body shares hyper's read buffer, and holding it
                // makes every reply allocate (and the kernel zero) a new one.
                r.kept.push(Bytes::copy_from_slice(&bytes));
            }
        } else {
            r.failed += 1;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(r)
}
