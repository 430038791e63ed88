//! Helpers for validating `service_params` field by field. Each error names the
//! field and never echoes a value (values may be passwords).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::secret::Secret;

/// Largest `service_params` accepted, in bytes of JSON.
pub const MAX_SERVICE_PARAMS: usize = 64 * 1024;

/// Parses `service_params`: URL-decoded already, must be a JSON object.
pub fn parse(raw: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    parse_param("service_params", raw)
}

/// Parses a parameter that holds URL-decoded JSON object text.
pub fn parse_param(param: &str, raw: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(Map::new());
    };
    if raw.len() > MAX_SERVICE_PARAMS {
        return Err(ApiError::invalid(
            param,
            format!("is larger than {MAX_SERVICE_PARAMS} bytes"),
        ));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid(param, "must be a JSON object")),
        Err(e) => Err(ApiError::invalid(
            param,
            format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// The fields of one `service_params` object; `finish` refuses leftovers.
pub struct Fields {
    map: Map<String, Value>,
    /// The parameter holding the object (`service_params`, `conf`, `conf.ha`).
    root: &'static str,
    /// The parameter was not sent at all.
    absent: bool,
}

impl Fields {
    pub fn new(map: Map<String, Value>, absent: bool) -> Self {
        Self::named("service_params", map, absent)
    }

    pub fn named(root: &'static str, map: Map<String, Value>, absent: bool) -> Self {
        Fields { map, root, absent }
    }

    fn field_name(&self, name: &str) -> String {
        format!("{}.{name}", self.root)
    }

    fn missing(&self, name: &str) -> ApiError {
        if self.absent {
            ApiError::missing(self.root)
        } else {
            ApiError::missing(&self.field_name(name))
        }
    }

    fn bad(&self, name: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::invalid(&self.field_name(name), why)
    }

    /// Required `;`-separated hosts: IPs, CIDR networks or the wildcard `any`.
    pub fn hosts(&mut self, name: &str, any: &str) -> Result<Vec<String>, ApiError> {
        let v = self.string(name)?;
        host_list(&v, any).ok_or_else(|| {
            self.bad(
                name,
                format!("must be {any} or IP addresses / CIDR networks separated by ;"),
            )
        })
    }

    /// An optional boolean (JSON `true`/`false`); `default` when absent.
    pub fn opt_bool(&mut self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(self.bad(name, "must be true or false")),
        }
    }

    /// An optional nested object, as its own `Fields`.
    pub fn opt_object(&mut self, name: &str, root: &'static str) -> Result<Fields, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(Fields::named(root, Map::new(), false)),
            Some(Value::Object(m)) => Ok(Fields::named(root, m, false)),
            Some(_) => Err(self.bad(name, "must be a JSON object")),
        }
    }

    /// A required string.
    pub fn string(&mut self, name: &str) -> Result<String, ApiError> {
        match self.opt_string(name)? {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    pub fn opt_string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    /// A required string checked by `valid`; `expect` says what is allowed.
    pub fn checked(
        &mut self,
        name: &str,
        expect: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<String, ApiError> {
        let v = self.string(name)?;
        if valid(&v) {
            Ok(v)
        } else {
            Err(self.bad(name, format!("must be {expect}")))
        }
    }

    /// A required string from a fixed set.
    pub fn one_of(&mut self, name: &str, allowed: &[&str]) -> Result<String, ApiError> {
        let v = self.string(name)?;
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            // Written only when refused: this runs on every request.
            Err(self.bad(name, format!("must be one of {}", allowed.join(", "))))
        }
    }

    /// A required integer in `[min, max]`; a string of digits is tolerated
    /// because the documentation's own example sends one.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Result<i64, ApiError> {
        let n = match self.map.remove(name) {
            None | Some(Value::Null) => return Err(self.missing(name)),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.bad(name, format!("must be an integer from {min} to {max}"))),
        }
    }

    /// A required secret that may come under several names (`passwd` or
    /// `password`); two different values are refused.
    pub fn secret(&mut self, names: &[&str], max_len: usize) -> Result<Secret, ApiError> {
        self.named_secret(names, max_len).map(|(s, _)| s)
    }

    fn named_secret<'n>(
        &mut self,
        names: &[&'n str],
        max_len: usize,
    ) -> Result<(Secret, &'n str), ApiError> {
        let mut found: Option<(String, &'n str)> = None;
        for name in names {
            match self.map.remove(*name) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    if let Some((prev, prev_name)) = &found {
                        if *prev != s {
                            return Err(ApiError::InvalidParameter(format!(
                                "parameters [{}] and [{}] disagree; send one of them",
                                self.field_name(prev_name),
                                self.field_name(name)
                            )));
                        }
                    } else {
                        found = Some((s, name));
                    }
                }
                Some(_) => return Err(self.bad(name, "must be a string")),
            }
        }
        match found {
            None => Err(self.missing(names[0])),
            Some((s, name)) if s.is_empty() || s.chars().count() > max_len => {
                Err(self.bad(name, format!("must be 1 to {max_len} characters")))
            }
            Some((s, name)) => Ok((Secret::new(s), name)),
        }
    }

    /// A required switch: `YES`/`NO`, or `ON`/`OFF` as the docs' examples
    /// send, in any case (notes §11).
    pub fn switch(&mut self, name: &str) -> Result<bool, ApiError> {
        let v = self.string(name)?;
        match v.to_ascii_uppercase().as_str() {
            "YES" | "ON" => Ok(true),
            "NO" | "OFF" => Ok(false),
            _ => Err(self.bad(name, "must be YES or NO")),
        }
    }

    /// An optional switch; `default` when absent.
    pub fn opt_switch(&mut self, name: &str, default: bool) -> Result<bool, ApiError> {
        if self.map.get(name).is_none_or(|v| v.is_null() || v == "") {
            self.map.remove(name);
            return Ok(default);
        }
        self.switch(name)
    }

    /// An optional integer in `[min, max]`; `default` when absent.
    pub fn opt_int(
        &mut self,
        name: &str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Result<i64, ApiError> {
        if self.map.get(name).is_none_or(|v| v.is_null() || v == "") {
            self.map.remove(name);
            return Ok(default);
        }
        self.int(name, min, max)
    }

    /// A required password under MySQL Plus's policy: 8 to 32 characters with
    /// an upper-case letter, a lower-case letter, a digit and one of
    /// `@#$%^&*_+-=`, nothing else.
    pub fn password(&mut self, names: &[&str]) -> Result<Secret, ApiError> {
        let (secret, name) = self.named_secret(names, 32)?;
        if is_strong_password(secret.expose()) {
            Ok(secret)
        } else {
            Err(self.bad(
                name,
                "must be 8 to 32 characters with an upper-case letter, a lower-case letter, a digit and one of @#$%^&*_+-=, and no other characters",
            ))
        }
    }

    /// Whether a field was sent (and not consumed yet).
    /// A field's raw JSON, for shapes the helpers here do not cover.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    /// Refuses any field the schema did not consume.
    pub fn finish(self) -> Result<(), ApiError> {
        let of = if self.root == "service_params" {
            "this service"
        } else {
            self.root
        };
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::InvalidParameter(format!(
                "parameter [{}] is not a field of {of}",
                self.field_name(&crate::params::printable(k))
            ))),
        }
    }
}

/// A host name or IP address (what a DBA would type for a source database).
pub fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
}

/// The special characters MySQL Plus passwords may (and must) contain.
const PASSWORD_SPECIALS: &[u8] = b"@#$%^&*_+-=";

pub fn is_strong_password(p: &str) -> bool {
    let b = p.as_bytes();
    (8..=32).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || PASSWORD_SPECIALS.contains(c))
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(|c| PASSWORD_SPECIALS.contains(c))
}

/// An account name as MySQL Plus accepts it: 2 to 26 of `[A-Za-z0-9_]`.
pub fn is_account_name(s: &str) -> bool {
    (2..=26).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An IP address or a CIDR network (v4 or v6).
pub fn is_ip_or_cidr(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|n| n <= max) && !b.starts_with('+'))
}

/// `;`-separated hosts, each an IP, a CIDR network or the wildcard `any`.
/// Returns them trimmed, without duplicates.
pub fn host_list(s: &str, any: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for h in s.split(';').map(str::trim).filter(|h| !h.is_empty()) {
        if h != any && !is_ip_or_cidr(h) {
            return None;
        }
        if !out.iter().any(|o| o == h) {
            out.push(h.to_string());
        }
    }
    (!out.is_empty() && out.len() <= 64).then_some(out)
}

/// A node id: `cln-` and lower-case alphanumerics.
pub fn is_node_id(s: &str) -> bool {
    s.strip_prefix("cln-").is_some_and(|r| {
        !r.is_empty()
            && r.len() <= 32
            && r.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

/// A database account name.
pub fn is_db_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        Fields::new(v.as_object().cloned().unwrap_or_default(), false)
    }

    #[test]
    fn parse_errors_name_service_params_and_never_echo_content() {
        let e = parse(Some(r#"{"passwd":"Hunter2!"#)).unwrap_err();
        assert_eq!(e.ret_code(), 1100);
        assert!(e.to_string().contains("[service_params] is not valid JSON"));
        assert!(!e.to_string().contains("Hunter2"));
        assert_eq!(parse(Some("[1]")).unwrap_err().ret_code(), 1100);
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(Some(&deep)).unwrap_err().ret_code(), 1100);
    }

    #[test]
    fn secret_accepts_either_name_but_not_two_different_values() {
        let mut f = fields(json!({"password": "a"}));
        assert_eq!(f.secret(&["passwd", "password"], 64).unwrap().expose(), "a");
        let mut f = fields(json!({"passwd": "a", "password": "a"}));
        assert!(f.secret(&["passwd", "password"], 64).is_ok());
        let mut f = fields(json!({"passwd": "a", "password": "b"}));
        let e = f.secret(&["passwd", "password"], 64).unwrap_err();
        assert!(e.to_string().contains("disagree") && !e.to_string().contains("\"a\""));
        let mut f = fields(json!({}));
        assert!(
            f.secret(&["passwd", "password"], 64)
                .unwrap_err()
                .to_string()
                .contains("[service_params.passwd] is required")
        );
    }

    #[test]
    fn password_policy() {
        for good in ["Passw0rd@", "Abcdefg1-", "Zz9=Zz9=Zz9=Zz9=Zz9=Zz9=Zz9=Zz9="] {
            assert!(is_strong_password(good), "{good}");
        }
        for bad in [
            "Short1@",
            "passw0rd@",
            "PASSW0RD@",
            "Password@",
            "Passw0rdx",
            "Passw0rd@ ",
            "Passw0rd!",
            "Zz9=Zz9=Zz9=Zz9=Zz9=Zz9=Zz9=Zz9=Z",
        ] {
            assert!(!is_strong_password(bad), "{bad}");
        }
        let mut f = fields(json!({"passwd": "weak"}));
        let e = f.password(&["passwd"]).unwrap_err();
        assert!(e.to_string().contains("[service_params.passwd]"));
        assert!(!e.to_string().contains("weak"));
    }

    #[test]
    fn hosts_and_names() {
        assert_eq!(host_list("%", "%").unwrap(), vec!["%"]);
        assert_eq!(
            host_list("10.0.0.1; 10.1.0.0/16;10.0.0.1", "%").unwrap(),
            vec!["10.0.0.1", "10.1.0.0/16"]
        );
        assert_eq!(host_list("10.0.0.1;%", "%").unwrap(), vec!["10.0.0.1", "%"]);
        assert!(host_list("10.0.0.1;*", "%").is_none());
        assert!(host_list("10.0.0.0/33", "%").is_none());
        assert!(host_list("", "%").is_none());
        assert_eq!(host_list("::/0", "::/0").unwrap(), vec!["::/0"]);
        assert!(host_list("fd00::/8", "::/0").is_some());
        assert!(is_account_name("app_rw") && !is_account_name("a") && !is_account_name("a-b"));
        assert!(is_node_id("cln-0a1b2c3d") && !is_node_id("cl-0a1b2c3d") && !is_node_id("cln-"));
    }

    #[test]
    fn int_and_leftovers() {
        let mut f = fields(json!({"port": 3306, "p2": "3307", "p3": 70000, "p4": 1.5, "x": 1}));
        assert_eq!(f.int("port", 1, 65535).unwrap(), 3306);
        assert_eq!(f.int("p2", 1, 65535).unwrap(), 3307);
        assert_eq!(f.int("p3", 1, 65535).unwrap_err().ret_code(), 1100);
        assert_eq!(f.int("p4", 1, 65535).unwrap_err().ret_code(), 1100);
        let e = f.finish().unwrap_err();
        assert!(e.to_string().contains("[service_params.x] is not a field"));
    }
}
