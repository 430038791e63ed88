//! A signing client for `qcgate call`, `qcgate bench` and the tests: it signs
//! exactly as the QingCloud SDKs do and keeps one keep-alive connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::auth::signature::{self, SignatureMethod};
use crate::clock::{format_ts, now_unix};
use crate::params::Params;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint {0}: use http://HOST:PORT/iaas/")]
    Endpoint(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("reply is not JSON (HTTP {status}): {body}")]
    NotJson { status: StatusCode, body: String },
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// The signed query string for `params` (common parameters added when absent).
pub fn sign(
    creds: &Credentials,
    verb: &str,
    path: &str,
    mut params: Vec<(String, String)>,
) -> String {
    let mut add = |k: &str, v: String| {
        if !params.iter().any(|(n, _)| n == k) {
            params.push((k.to_string(), v));
        }
    };
    add("access_key_id", creds.access_key_id.clone());
    // Like the Python SDK: every request distinct, so two calls in the same
    // second are two requests, not a replay of one.
    add("req_id", crate::ids::request_id());
    add("time_stamp", format_ts(now_unix()));
    add("signature_method", "HmacSHA256".into());
    add("signature_version", "1".into());
    add("version", "1".into());
    let method = params
        .iter()
        .find(|(k, _)| k == "signature_method")
        .and_then(|(_, v)| SignatureMethod::parse(v))
        .unwrap_or(SignatureMethod::HmacSha256);
    let p = Params::from_pairs(params);
    let canonical = signature::canonical_query(p.iter());
    let sig = signature::compute(
        method,
        creds.secret_access_key.expose().as_bytes(),
        &format!("{verb}\n{path}\n{canonical}"),
    );
    format!(
        "{canonical}&signature={}",
        signature::encode(&sig.to_base64())
    )
}

pub struct Client {
    authority: String,
    pub path: String,
    pub creds: Credentials,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(endpoint: &str, creds: Credentials) -> Result<Client, ClientError> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| ClientError::Endpoint(endpoint.into()))?;
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Endpoint(endpoint.into()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Endpoint(endpoint.into()))?
            .to_string();
        let path = match uri.path() {
            "" | "/" => "/iaas/".to_string(),
            p => p.to_string(),
        };
        Ok(Client {
            authority,
            path,
            creds,
            sender: None,
        })
    }

    /// A signed GET; returns the JSON reply.
    pub async fn call(
        &mut self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let query = self.signed("GET", action, params);
        let (status, body) = self
            .send(Method::GET, &format!("{}?{query}", self.path), None)
            .await?;
        parse_json(status, body)
    }

    /// A signed POST with a form body.
    pub async fn call_post(
        &mut self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let body = self.signed("POST", action, params);
        let path = self.path.clone();
        let (status, body) = self
            .send(Method::POST, &path, Some(body.into_bytes()))
            .await?;
        parse_json(status, body)
    }

    fn signed(&self, verb: &str, action: &str, params: &[(&str, &str)]) -> String {
        let mut all: Vec<(String, String)> = vec![("action".into(), action.into())];
        all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        sign(&self.creds, verb, &self.path, all)
    }

    /// Sends a raw request (used to test hostile input); returns status and body.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        form: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let host = self.authority.clone();
        let sender = self.connection().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", host);
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ClientError> {
        let stale = match &mut self.sender {
            Some(s) => s.ready().await.is_err(),
            None => true,
        };
        if stale {
            let stream = TcpStream::connect(&self.authority).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| ClientError::Endpoint(self.authority.clone()))
    }
}

fn parse_json(status: StatusCode, body: Bytes) -> Result<Value, ClientError> {
    serde_json::from_slice(&body).map_err(|_| ClientError::NotJson {
        status,
        body: String::from_utf8_lossy(&body).chars().take(200).collect(),
    })
}
