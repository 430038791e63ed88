//! Authentication: runs once per request, before dispatch, for every action.
//!
//! Order: required common parameters (1100) → key lookup and signature (1200,
//! one message for both) → time window (1300).

pub mod signature;
pub mod throttle;
pub mod time_window;

use std::sync::Arc;

use crate::error::ApiError;
use crate::params::Params;
use crate::secret::Secret;
use signature::SignatureMethod;
pub use throttle::FailureThrottle;
pub use time_window::TimeWindow;

/// Who is calling, once the signature has been verified.
#[derive(Debug)]
pub struct Caller {
    pub access_key_id: String,
    pub owner: String,
    /// The verified MAC, kept for [`Caller::request_digest`].
    mac: signature::Signature,
    /// The last second at which this signed request is valid.
    pub valid_until: i64,
}

impl Caller {
    /// Identifies this exact signed request (a digest of its verified MAC).
    /// Computed on demand: only actions that store jobs need it.
    pub fn request_digest(&self) -> String {
        self.mac.digest()
    }
}

/// What the key store returns for an access key id. The secret itself is
/// not kept: only the HMAC states it keys.
pub struct KeyRecord {
    keyed: signature::Keyed,
    pub owner: String,
}

impl KeyRecord {
    pub fn new(secret: &Secret, owner: String) -> KeyRecord {
        KeyRecord {
            keyed: signature::Keyed::new(secret.expose().as_bytes()),
            owner,
        }
    }
}

/// A request as received: the verb and path are part of what was signed.
pub struct SignedRequest<'a> {
    pub verb: &'a str,
    pub path: &'a str,
    pub params: &'a Params,
    pub signature: &'a str,
    /// The query string as received, when it holds every parameter (no
    /// form body): if it already is canonical, it is signed as it stands.
    pub raw_query: Option<&'a str>,
}

pub fn authenticate(
    req: &SignedRequest<'_>,
    window: &TimeWindow,
    now: i64,
    lookup: impl FnOnce(&str) -> Result<Option<Arc<KeyRecord>>, ApiError>,
) -> Result<Caller, ApiError> {
    let p = req.params;
    let key_id = p.required("access_key_id")?;
    let time_stamp = p.required("time_stamp")?;
    if req.signature.is_empty() {
        return Err(ApiError::missing("signature"));
    }
    let method = match p.optional("signature_method") {
        None => SignatureMethod::HmacSha256,
        Some(m) => SignatureMethod::parse(m).ok_or_else(|| {
            ApiError::invalid("signature_method", "must be HmacSHA256 or HmacSHA1")
        })?,
    };
    if let Some(v) = p.optional("signature_version") {
        // 2 is the IAM flavour: the same algorithm.
        if v != "1" && v != "2" {
            return Err(ApiError::invalid("signature_version", "must be 1"));
        }
    }
    if let Some(v) = p.optional("version")
        && v != "1"
    {
        return Err(ApiError::invalid("version", "must be 1"));
    }

    let record = lookup(key_id)?.ok_or(ApiError::AuthFailure)?;
    let expected = match req.raw_query.and_then(signature::canonical_in_raw) {
        Some([head, join, tail]) => record
            .keyed
            .sign_parts(method, &[req.verb, "\n", req.path, "\n", head, join, tail]),
        None => record
            .keyed
            .sign(method, &signature::string_to_sign(req.verb, req.path, p)),
    };
    if !expected.matches(req.signature) {
        return Err(ApiError::AuthFailure);
    }
    let valid_until = window.check(now, time_stamp, p.optional("expires"))?;
    Ok(Caller {
        access_key_id: key_id.to_string(),
        owner: record.owner.clone(),
        mac: expected,
        valid_until,
    })
}
