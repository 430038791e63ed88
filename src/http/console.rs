//! The web console's files, built into the binary (no CDN, no other
//! server). They hold no data and need no signature: the page signs its own
//! requests to `/iaas/` with the key a person types in.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

const INDEX: &str = include_str!("../console/index.html");
const APP: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/style.css");

/// The console file at `path`, if it is one.
pub fn file(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, kind) = match path {
        "/console" => {
            return Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header("location", "/console/")
                .body(Full::new(Bytes::new()))
                .ok();
        }
        "/console/" | "/console/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/console/app.js" => (APP, "text/javascript; charset=utf-8"),
        "/console/style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", kind)
        // Only its own files run; it is never framed by another page.
        .header(
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        )
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-cache")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .ok()
}
