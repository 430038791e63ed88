//! The HTTP edge: routes, reads the request within its limits, runs the
//! request path (parse → authenticate → dispatch → handle) and renders the
//! envelope. Every `/iaas` answer is HTTP 200 with `application/json`.

mod console;
mod envelope;
mod idle;
mod raw_errors;

pub use idle::{Activity, IdleSweeper};
pub use raw_errors::JsonRejections;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::actions::{self, Context};
use crate::auth::{self, SignedRequest};
use crate::clock::now_unix;
use crate::error::ApiError;
use crate::params::{Params, printable};
use crate::state::AppState;

/// Largest query string or form body.
pub const MAX_INPUT: usize = 1024 * 1024;
/// A body declared over [`MAX_INPUT`] but at most this is read (and
/// dropped) before the answer.
const DRAINED: usize = 4 * MAX_INPUT;

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let Some(page) = console::file(path) {
        return page;
    }
    match path {
        "/iaas" | "/iaas/" => {}
        "/healthz" => return envelope::json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        "/metrics" if metrics_allowed(&state, peer) => return metrics(&state),
        _ => {
            let err = ApiError::InvalidAction(format!(
                "no API at path [{}]; the API is served at /iaas/",
                printable(path)
            ));
            return envelope::json(StatusCode::NOT_FOUND, envelope::error_body(&err));
        }
    }
    let started = Instant::now();
    let mut seen = Seen::default();
    let (action, code, jobs, body) = match api(&state, req, &mut seen).await {
        Ok((action, reply)) => {
            let jobs = if seen.wanted {
                reply.job_ids()
            } else {
                Vec::new()
            };
            (
                action.clone(),
                0,
                jobs,
                envelope::success_body(&action, reply),
            )
        }
        Err((action, err)) => (
            action,
            err.ret_code(),
            Vec::new(),
            envelope::error_body(&err),
        ),
    };
    let took = started.elapsed();
    crate::metrics::request(&action, code, took);
    log_request(&action, code, took, &seen, &jobs);
    envelope::json(StatusCode::OK, body)
}

/// A caller's value cut short and made printable, for a log line.
fn short(v: &str) -> String {
    printable(&v.chars().take(40).collect::<String>())
}

/// What a request said about itself, for its log line (never a secret).
#[derive(Default)]
struct Seen {
    /// Whether its line will be logged at the level set (reads are logged
    /// at debug: at the default level nothing is gathered for them).
    wanted: bool,
    req_id: String,
    access_key_id: String,
    owner: String,
    throttled: bool,
}

/// Changes are logged at info, reads at debug, failures of the gateway at
/// warn, authentication failures at info and lock-outs at warn.
fn log_request(action: &str, code: u32, took: std::time::Duration, s: &Seen, jobs: &[String]) {
    let latency_ms = took.as_secs_f64() * 1000.0;
    let job_id = jobs.join(",");
    macro_rules! line {
        ($level:ident, $what:literal) => {
            tracing::$level!(
                req_id = %s.req_id,
                action,
                ret_code = code,
                latency_ms,
                access_key_id = %s.access_key_id,
                owner = %s.owner,
                job_id = %job_id,
                $what
            )
        };
    }
    if s.throttled {
        line!(
            warn,
            "request refused: too many failed signatures for this key id"
        );
    } else if code == 1200 {
        line!(info, "authentication failed");
    } else if code >= 5000 {
        line!(warn, "request failed");
    } else if action.starts_with("Describe") {
        line!(debug, "request");
    } else {
        line!(info, "request");
    }
}

fn metrics_allowed(state: &AppState, peer: std::net::SocketAddr) -> bool {
    match state.metrics.serve.as_str() {
        "everyone" => true,
        "loopback" => peer.ip().is_loopback(),
        _ => false,
    }
}

fn metrics(state: &AppState) -> Response<Full<Bytes>> {
    match crate::metrics::render(&state.store, &state.metrics) {
        Ok(text) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(text)))
            .unwrap_or_else(|_| {
                envelope::json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    br#"{"status":"error"}"#.to_vec(),
                )
            }),
        Err(e) => {
            tracing::warn!(error = %e, "metrics could not be read");
            let err = ApiError::Internal("the metrics could not be read".into());
            envelope::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                envelope::error_body(&err),
            )
        }
    }
}

type Outcome = Result<(String, actions::Reply), (String, ApiError)>;

async fn api(state: &AppState, req: Request<Incoming>, seen: &mut Seen) -> Outcome {
    let unknown = || "?".to_string();
    let verb = req.method().clone();
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").as_bytes();
    if query.len() > MAX_INPUT {
        return Err((
            unknown(),
            ApiError::InvalidParameter("the query string is larger than 1 MiB".into()),
        ));
    }
    let body = match verb {
        Method::GET => Bytes::new(),
        Method::POST => read_form(state, &parts.headers, body)
            .await
            .map_err(|e| (unknown(), e))?,
        other => {
            return Err((
                unknown(),
                ApiError::InvalidAction(format!(
                    "HTTP method {} is not supported; use GET or POST",
                    printable(other.as_str())
                )),
            ));
        }
    };

    // parse
    let mut params = Params::parse(&[query, &body]).map_err(|e| (unknown(), e))?;
    let signature = params.take("signature").unwrap_or_default();
    let action = params.get("action").map(printable).unwrap_or_else(unknown);

    // authenticate (once, for every action)
    let signed = SignedRequest {
        verb: verb.as_str(),
        path: &path,
        params: &params,
        signature: &signature,
        raw_query: body.is_empty().then(|| parts.uri.query().unwrap_or("")),
    };
    let key_id = params.get("access_key_id").unwrap_or_default();
    seen.wanted = !action.starts_with("Describe") || tracing::enabled!(tracing::Level::DEBUG);
    if seen.wanted {
        seen.access_key_id = short(key_id);
        seen.req_id = params.get("req_id").map(short).unwrap_or_default();
    }
    state.throttle.check(key_id).map_err(|e| {
        seen.throttled = true;
        (action.clone(), e)
    })?;
    let store = &state.store;
    let caller = auth::authenticate(&signed, &state.window, now_unix(), |id| {
        Ok(store.access_key(id)?)
    })
    .map_err(|e| {
        if matches!(e, ApiError::AuthFailure) {
            state.throttle.record_failure(key_id);
            seen.access_key_id = short(key_id);
        }
        (action.clone(), e)
    })?;

    if seen.wanted {
        seen.owner = caller.owner.clone();
    }

    // dispatch
    let name = params.required("action").map_err(|e| (action.clone(), e))?;
    let handler = actions::find(name).ok_or_else(|| {
        (
            action.clone(),
            ApiError::InvalidAction(format!("action [{action}] does not exist")),
        )
    })?;
    let cx = Context {
        state,
        caller: &caller,
        params: &params,
    };
    match handler.handle(&cx).await {
        Ok(reply) => Ok((action, reply)),
        Err(e) => Err((action, e)),
    }
}

async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, ApiError> {
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::InvalidParameter(
            "a POST body must be application/x-www-form-urlencoded".into(),
        ));
    }
    // A body declared too large is refused at once, not after waiting for
    // it. What of one not far over is arriving is read and dropped first
    // (a client still sending when the connection closes sees a reset,
    // not the answer); a pause in it ends that.
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > MAX_INPUT as u64) {
        if n <= DRAINED as u64 {
            let mut body = body;
            let pause = std::time::Duration::from_millis(200);
            let drain = async {
                while let Ok(Some(Ok(_))) = tokio::time::timeout(pause, body.frame()).await {}
            };
            let _ = tokio::time::timeout(state.body_timeout, drain).await;
        }
        return Err(ApiError::InvalidParameter(
            "the request body is larger than 1 MiB".into(),
        ));
    }
    let limited = Limited::new(body, MAX_INPUT);
    match tokio::time::timeout(state.body_timeout, limited.collect()).await {
        Err(_) => Err(ApiError::InvalidParameter(
            "the request body was not received in time".into(),
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::InvalidParameter(
                "the request body is larger than 1 MiB".into(),
            ))
        }
        Ok(Err(_)) => Err(ApiError::InvalidParameter(
            "the request body could not be read".into(),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

pub(crate) fn content_type_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}
