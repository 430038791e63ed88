//! Resource ids, all drawn from the thread-local CSPRNG (ChaCha, OS-seeded).

use rand::RngExt;

const LOWER: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const UPPER_DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn draw(prefix: &str, alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    for _ in 0..n {
        s.push(alphabet[rng.random_range(0..alphabet.len())] as char);
    }
    s
}

/// Names this gateway process's workers in job leases. (Job ids come from
/// the store: `store::job_ids`.)
pub fn instance_id() -> String {
    draw("", LOWER, 11)
}

pub fn cluster_id() -> String {
    draw("cl-", LOWER, 8)
}

/// A DR task, like DRS's tasks but in QingCloud's style.
pub fn dr_task_id() -> String {
    draw("drt-", LOWER, 8)
}

/// A comparison of a DR task's two sides.
pub fn compare_id() -> String {
    draw("drc-", LOWER, 8)
}

pub fn is_dr_task_id(s: &str) -> bool {
    s.strip_prefix("drt-")
        .is_some_and(|r| r.len() == 8 && r.bytes().all(|b| LOWER.contains(&b)))
}

pub fn is_compare_id(s: &str) -> bool {
    s.strip_prefix("drc-")
        .is_some_and(|r| r.len() == 8 && r.bytes().all(|b| LOWER.contains(&b)))
}

pub fn node_id() -> String {
    draw("cln-", LOWER, 8)
}

/// 20 upper-case letters, like QingCloud's.
pub fn access_key_id() -> String {
    draw("", UPPER, 20)
}

pub fn secret_access_key() -> String {
    draw("", ALNUM, 40)
}

pub fn owner_id() -> String {
    draw("usr-", UPPER_DIGITS, 8)
}

/// 32 hex characters, like the Python SDK's `uuid4().hex` request ids.
pub fn request_id() -> String {
    draw("", b"0123456789abcdef", 32)
}

/// `j-` followed by lower-case alphanumerics (older ids had 8).
pub fn is_job_id(s: &str) -> bool {
    s.strip_prefix("j-")
        .is_some_and(|r| !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| LOWER.contains(&b)))
}

pub fn is_cluster_id(s: &str) -> bool {
    s.strip_prefix("cl-")
        .is_some_and(|r| !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| LOWER.contains(&b)))
}

pub fn is_owner_id(s: &str) -> bool {
    s.strip_prefix("usr-").is_some_and(|r| {
        !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Zones are lower-case ids such as `pek3a`, `sh1a`, `gd2`.
pub fn is_zone(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let i = instance_id();
        assert_eq!(i.len(), 11);
        assert!(is_job_id(&format!("j-{i}")));
        assert_ne!(instance_id(), instance_id());
        assert!(is_cluster_id(&cluster_id()));
        assert!(is_owner_id(&owner_id()));
        let ak = access_key_id();
        assert!(ak.len() == 20 && ak.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(!is_job_id("j-ABC"));
        assert!(!is_job_id("j-"));
        assert!(!is_zone("PEK3A"));
        assert!(is_zone("pek3a"));
    }
}
