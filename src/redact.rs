//! Removing secrets from what the gateway keeps or shows (`directive`, logs).

use serde_json::Value;

use crate::params::Params;
use crate::written::Object;

/// Parameter names that are never stored or shown, whatever the action.
const NEVER_KEPT: [&str; 3] = ["signature", "access_key_id", "token"];

/// A name that looks like it carries a secret (any case).
pub fn is_secret_name(name: &str) -> bool {
    const MARKS: [&[u8]; 4] = [b"passw", b"secret", b"token", b"private_key"];
    let n = name.as_bytes();
    MARKS
        .iter()
        .any(|m| n.windows(m.len()).any(|w| w.eq_ignore_ascii_case(m)))
}

/// Whether a JSON value has a secret-looking key anywhere.
pub fn has_secret_names(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| is_secret_name(k) || has_secret_names(v)),
        Value::Array(items) => items.iter().any(has_secret_names),
        _ => false,
    }
}

/// Drops secret-looking keys from a JSON object, recursively.
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_secret_name(k));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// The request as a JSON string with every secret removed (a JSON object,
/// sorted by name, like a JSON map). `service_params` is replaced by
/// `scrubbed_service_params` (JSON text) when given, and left out when not.
pub fn directive(params: &Params, scrubbed_service_params: Option<&str>) -> String {
    let size: usize = params.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut o = Object::with_capacity(size + size / 4 + 2);
    for (k, v) in params.iter() {
        if NEVER_KEPT.contains(&k) || is_secret_name(k) {
            continue;
        }
        if k == "service_params" {
            if let Some(sp) = scrubbed_service_params {
                o.str(k, sp);
            }
            continue;
        }
        o.str(k, v);
    }
    o.finish()
}

/// A connection URL as it may be shown: its password, if any, masked.
pub fn url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return text.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:******@{host}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn directive_keeps_no_secret() {
        let p = Params::from_pairs([
            ("action", "RunClusterCustomService"),
            ("access_key_id", "AKID"),
            ("signature", "SIG"),
            ("login_passwd", "pw1"),
            ("service_params", r#"{"passwd":"pw2","user":"u"}"#),
        ]);
        let mut sp = json!({"passwd": "pw2", "user": "u", "nested": {"password": "pw3"}});
        assert!(has_secret_names(&sp));
        scrub(&mut sp);
        assert!(!has_secret_names(&sp));
        assert!(has_secret_names(&json!([{"a": {"Token": 1}}])));
        assert!(!has_secret_names(&json!({"user": "u", "hosts": ["passw"]})));
        let d = directive(&p, Some(&sp.to_string()));
        for secret in ["AKID", "SIG", "pw1", "pw2", "pw3", "signature"] {
            assert!(!d.contains(secret), "{secret} leaked into {d}");
        }
        assert!(d.contains("RunClusterCustomService") && d.contains("\\\"user\\\""));
        let shown: serde_json::Map<String, Value> = serde_json::from_str(&d).expect("an object");
        let names: Vec<&str> = shown.keys().map(String::as_str).collect();
        assert_eq!(names, ["action", "service_params"]);
        assert_eq!(shown["service_params"], Value::String(sp.to_string()));
        assert_eq!(
            directive(&p, None),
            r#"{"action":"RunClusterCustomService"}"#
        );
        assert!(is_secret_name("Login_PassWord") && is_secret_name("x_private_key"));
        assert!(!is_secret_name("user") && !is_secret_name("passes"));
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            url("postgres://qc:s3cr%40t@127.0.0.1:5432/qcgate"),
            "postgres://qc:******@127.0.0.1:5432/qcgate"
        );
        assert_eq!(
            url("postgres://qc@127.0.0.1:5432/qcgate"),
            "postgres://qc@127.0.0.1:5432/qcgate"
        );
        assert_eq!(url("nonsense"), "nonsense");
    }
}
