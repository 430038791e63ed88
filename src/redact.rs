//! Removing secrets from what the gateway keeps or shows (`directive`, logs).

use serde_json::{Map, Value};

use crate::params::Params;

/// Parameter names that are never stored or shown, whatever the action.
const NEVER_KEPT: [&str; 3] = ["signature", "access_key_id", "token"];

/// A name that looks like it carries a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("passw") || n.contains("secret") || n.contains("token") || n.contains("private_key")
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

/// The request as a JSON string with every secret removed. `service_params`
/// is replaced by `scrubbed_service_params` when given.
pub fn directive(params: &Params, scrubbed_service_params: Option<&Value>) -> String {
    let mut m = Map::new();
    for (k, v) in params.iter() {
        if NEVER_KEPT.contains(&k) || is_secret_name(k) {
            continue;
        }
        if k == "service_params" {
            if let Some(sp) = scrubbed_service_params {
                m.insert(k.to_string(), Value::String(sp.to_string()));
            }
            continue;
        }
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m).to_string()
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
        scrub(&mut sp);
        let d = directive(&p, Some(&sp));
        for secret in ["AKID", "SIG", "pw1", "pw2", "pw3", "signature"] {
            assert!(!d.contains(secret), "{secret} leaked into {d}");
        }
        assert!(d.contains("RunClusterCustomService") && d.contains("\\\"user\\\""));
    }
}
