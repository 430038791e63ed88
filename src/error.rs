//! The API's error enum and its wire form: `{"message":"Name, detail","ret_code":N}`.
//!
//! Every layer converts its own error into `ApiError` before the edge renders it,
//! so the codes and names below are the complete list a client can see.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 1100: a parameter is missing, malformed or fails its schema.
    #[error("InvalidParameter, {0}")]
    InvalidParameter(String),
    /// 1101: the action (or HTTP method) does not exist.
    #[error("InvalidAction, {0}")]
    InvalidAction(String),
    /// 1200: unknown key or wrong signature; one message for both so keys cannot be probed.
    #[error("AuthFailure, the access key is unknown or the signature does not match")]
    AuthFailure,
    /// 1300: outside the `time_stamp` / `expires` window.
    #[error("RequestExpired, {0}")]
    RequestExpired(String),
    /// 1400: the resource's state forbids the operation.
    #[error("PermissionDenied, {0}")]
    PermissionDenied(String),
    /// 2100: missing, or owned by someone else (the two are indistinguishable on purpose).
    #[error("ResourceNotFound, {0}")]
    ResourceNotFound(String),
    /// 2500: a quota or rate limit.
    #[error("QuotaExceeded, {0}")]
    QuotaExceeded(String),
    /// 5000: nothing was stored; the SDK may safely re-send.
    #[error("InternalError, {0}")]
    Internal(String),
    /// 5100: nothing was stored; busy or shutting down.
    #[error("ServerBusy, {0}")]
    Busy(String),
}

impl ApiError {
    pub fn ret_code(&self) -> u32 {
        match self {
            ApiError::InvalidParameter(_) => 1100,
            ApiError::InvalidAction(_) => 1101,
            ApiError::AuthFailure => 1200,
            ApiError::RequestExpired(_) => 1300,
            ApiError::PermissionDenied(_) => 1400,
            ApiError::ResourceNotFound(_) => 2100,
            ApiError::QuotaExceeded(_) => 2500,
            ApiError::Internal(_) => 5000,
            ApiError::Busy(_) => 5100,
        }
    }

    pub fn missing(name: &str) -> Self {
        ApiError::InvalidParameter(format!("parameter [{name}] is required"))
    }

    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        ApiError::InvalidParameter(format!("parameter [{name}] {why}"))
    }

    pub fn not_found(id: &str) -> Self {
        ApiError::ResourceNotFound(format!("resource [{id}] not found"))
    }

    /// For a lookup scoped to a zone: says which zone was asked (the same
    /// words whether the id exists elsewhere or not at all).
    pub fn not_found_in_zone(id: &str, zone: &str) -> Self {
        ApiError::ResourceNotFound(format!("resource [{id}] not found in zone [{zone}]"))
    }

    /// The JSON envelope, keys in a stable order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(self.to_string()));
        m.insert("ret_code".into(), Value::from(self.ret_code()));
        Value::Object(m)
    }
}
