//! The QingCloud envelope: `{"action":"XxxResponse","ret_code":0,…}` on
//! success, `{"message":"Name, detail","ret_code":N}` on error.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::actions::Reply;
use crate::error::ApiError;

pub fn success_body(action: &str, mut reply: Reply) -> Vec<u8> {
    let mut name = String::with_capacity(action.len() + "Response".len());
    name.push_str(action);
    name.push_str("Response");
    reply.insert("action".into(), Value::String(name));
    reply.insert("ret_code".into(), Value::from(0));
    reply
        .to_json()
        .unwrap_or_else(|_| error_body(&ApiError::Internal("reply not serialisable".into())))
}

pub fn error_body(err: &ApiError) -> Vec<u8> {
    err.to_json().to_string().into_bytes()
}

pub fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, super::content_type_json());
    resp
}
