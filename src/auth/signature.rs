//! QingCloud signature version 1 (notes §2).
//!
//! `string_to_sign = VERB \n PATH \n canonical_query`, where the canonical query
//! is every parameter but `signature`, sorted by raw name, RFC 3986-encoded
//! (upper-case hex, space as `%20`, `~` kept), and `name=` for empty values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use subtle::ConstantTimeEq;

use crate::params::Params;

/// RFC 3986 unreserved bytes besides letters and digits.
const MARKS: [u8; 4] = *b"-_.~";

/// Everything but RFC 3986 unreserved characters is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(MARKS[0])
    .remove(MARKS[1])
    .remove(MARKS[2])
    .remove(MARKS[3]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha256,
    HmacSha1,
}

impl SignatureMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HmacSHA256" => Some(Self::HmacSha256),
            "HmacSHA1" => Some(Self::HmacSha1),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "HmacSHA256",
            Self::HmacSha1 => "HmacSHA1",
        }
    }
}

/// A computed MAC. It has no `PartialEq`: the only comparison offered is
/// [`Signature::matches`], which runs in constant time.
pub struct Signature(Vec<u8>);

impl Signature {
    pub fn matches(&self, provided_base64: &str) -> bool {
        // Some decoders turn an unescaped `+` into a space (notes §2.1 step 8).
        let fixed;
        let text = if provided_base64.contains(' ') {
            fixed = provided_base64.replace(' ', "+");
            fixed.as_str()
        } else {
            provided_base64
        };
        match B64.decode(text.trim()) {
            Ok(bytes) => bytes.ct_eq(&self.0).into(),
            Err(_) => false,
        }
    }

    pub fn to_base64(&self) -> String {
        B64.encode(&self.0)
    }

    /// A SHA-256 of the MAC: names the signed request without storing the MAC.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        B64.encode(sha2::Sha256::digest(&self.0))
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

/// RFC 3986 percent-encoding as the canonical query needs it.
pub fn encode(s: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(s, ENCODE)
}

/// The canonical query over every parameter except `signature`.
pub fn canonical_query<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    push_canonical_query(&mut out, params);
    out
}

/// Appends the canonical query to `out`.
fn push_canonical_query<'a>(out: &mut String, params: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut sorted: Vec<(&str, &str)> = params.filter(|(k, _)| *k != "signature").collect();
    // `Params` iterates in byte order already; a client's pairs may not.
    if !sorted.is_sorted_by(|a, b| a.0.as_bytes() <= b.0.as_bytes()) {
        sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    out.reserve(
        sorted
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
            * 5
            / 4,
    );
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        // The encoder yields slices: pushing them skips `fmt` (5% of a request).
        out.extend(utf8_percent_encode(k, ENCODE));
        out.push('=');
        out.extend(utf8_percent_encode(v, ENCODE));
    }
}

/// RFC 3986 unreserved bytes: the only ones the canonical query shows as is.
static UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        t[b] = byte.is_ascii_alphanumeric()
            || byte == MARKS[0]
            || byte == MARKS[1]
            || byte == MARKS[2]
            || byte == MARKS[3];
        b += 1;
    }
    t
};

/// The canonical query read straight off a query string that already is
/// one, as the SDKs and the CLI send a GET: pairs sorted by name, in the
/// canonical encoding, with `signature=…` among them. Returns the
/// canonical query in three pieces: the text before the signature pair,
/// `&` or nothing, the text after it. Anything else (`+`, lower-case
/// hex, an escaped unreserved byte, a bare name, an empty segment, names
/// out of order) is `None` and is canonicalised from the decoded
/// parameters instead. Only names of unreserved bytes are taken, so their
/// raw order is their decoded order; the two ways then give the same text
/// (a test and the fuzz target hold them together), and this one skips
/// decoding, sorting and re-encoding (a third of a verification).
pub fn canonical_in_raw(raw: &str) -> Option<[&str; 3]> {
    // One pass, byte by byte: this runs for every request.
    let b = raw.as_bytes();
    let unreserved_from = |mut i: usize| {
        while i < b.len() && UNRESERVED[usize::from(b[i])] {
            i += 1;
        }
        i
    };
    let (mut signature, mut previous, mut i) = (None, &b[..0], 0);
    loop {
        let from = i;
        i = unreserved_from(i);
        let name = &b[from..i];
        if name.is_empty() || b.get(i) != Some(&b'=') {
            return None;
        }
        if name == b"signature" {
            // Not signed: its value is skipped, whatever it holds.
            i = memchr::memchr(b'&', &b[i..]).map_or(b.len(), |n| i + n);
            if signature.replace((from, i)).is_some() {
                return None;
            }
        } else {
            if name <= previous {
                return None;
            }
            previous = name;
            i = unreserved_from(i + 1);
            while b.get(i) == Some(&b'%') {
                let escaped = hex(b.get(i + 1))? << 4 | hex(b.get(i + 2))?;
                if UNRESERVED[usize::from(escaped)] {
                    return None;
                }
                i = unreserved_from(i + 3);
            }
        }
        match b.get(i) {
            None => break,
            Some(b'&') => i += 1,
            Some(_) => return None,
        }
    }
    let (from, to) = signature?;
    let head = raw.get(..from.saturating_sub(1))?;
    let tail = raw.get((to + 1).min(raw.len())..)?;
    let join = if head.is_empty() || tail.is_empty() {
        ""
    } else {
        "&"
    };
    Some([head, join, tail])
}

/// An upper-case hex digit's value.
fn hex(b: Option<&u8>) -> Option<u8> {
    match b? {
        d @ b'0'..=b'9' => Some(d - b'0'),
        d @ b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// `VERB\nPATH\nCANONICAL_QUERY`, written into one buffer.
pub fn string_to_sign(verb: &str, path: &str, params: &Params) -> String {
    let mut out = String::with_capacity(verb.len() + path.len() + 2);
    out.push_str(verb);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    push_canonical_query(&mut out, params.iter());
    out
}

/// A secret key's HMAC states, keyed once when the key is loaded: each
/// request then starts from a copy instead of hashing the key again (two
/// of the ~nine SHA-256 blocks a request's MAC takes).
#[derive(Clone)]
pub struct Keyed {
    sha256: Hmac<sha2::Sha256>,
    sha1: Hmac<sha1::Sha1>,
}

impl Keyed {
    pub fn new(secret: &[u8]) -> Keyed {
        Keyed {
            sha256: keyed(secret),
            sha1: keyed(secret),
        }
    }

    pub fn sign(&self, method: SignatureMethod, string_to_sign: &str) -> Signature {
        self.sign_parts(method, &[string_to_sign])
    }

    /// The MAC of the parts' concatenation, without concatenating them.
    pub fn sign_parts(&self, method: SignatureMethod, parts: &[&str]) -> Signature {
        match method {
            SignatureMethod::HmacSha256 => finish(self.sha256.clone(), parts),
            SignatureMethod::HmacSha1 => finish(self.sha1.clone(), parts),
        }
    }
}

/// An HMAC state keyed with `secret`.
fn keyed<M: KeyInit>(secret: &[u8]) -> M {
    // HMAC accepts keys of any length, so this cannot fail.
    M::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// The MAC of the parts, in order, from a keyed state.
fn finish<M: Mac>(mut state: M, parts: &[&str]) -> Signature {
    for part in parts {
        state.update(part.as_bytes());
    }
    Signature(state.finalize().into_bytes().to_vec())
}

/// Keyed states are as good as the key.
impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(..)")
    }
}

/// Keys and signs in one go (clients; the gateway signs with [`Keyed`]).
pub fn compute(method: SignatureMethod, secret: &[u8], string_to_sign: &str) -> Signature {
    let msg = &[string_to_sign];
    match method {
        SignatureMethod::HmacSha256 => finish(keyed::<Hmac<sha2::Sha256>>(secret), msg),
        SignatureMethod::HmacSha1 => finish(keyed::<Hmac<sha1::Sha1>>(secret), msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tv1_params(zone: &str, method: &str) -> Params {
        Params::from_pairs([
            ("count", "1"),
            ("vxnets.1", "vxnet-0"),
            ("zone", zone),
            ("instance_type", "small_b"),
            ("signature_version", "1"),
            ("signature_method", method),
            ("instance_name", "demo"),
            ("image_id", "centos64x86a"),
            ("login_mode", "passwd"),
            ("login_passwd", "QingCloud20130712"),
            ("version", "1"),
            ("access_key_id", "QYACCESSKEYIDEXAMPLE"),
            ("action", "RunInstances"),
            ("time_stamp", "2013-08-27T14:30:10Z"),
        ])
    }

    /// Every test vector is checked through both ways of signing; the keyed
    /// states are used twice, as the gateway uses them for every request.
    fn sign(method: SignatureMethod, key: &str, path: &str, p: &Params) -> String {
        let text = string_to_sign("GET", path, p);
        let direct = compute(method, key.as_bytes(), &text).to_base64();
        let keyed = Keyed::new(key.as_bytes());
        for _ in 0..2 {
            assert_eq!(keyed.sign(method, &text).to_base64(), direct);
        }
        direct
    }

    #[test]
    fn tv1_official_docs_example() {
        let p = tv1_params("pek3a", "HmacSHA256");
        assert_eq!(
            string_to_sign("GET", "/iaas/", &p),
            "GET\n/iaas/\naccess_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek3a"
        );
        let sig = sign(SignatureMethod::HmacSha256, "SECRETACCESSKEY", "/iaas/", &p);
        assert_eq!(sig, "byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw=");
    }

    #[test]
    fn tv2_go_signer1() {
        let p = tv1_params("pek1", "HmacSHA256");
        let sig = sign(SignatureMethod::HmacSha256, "SECRETACCESSKEY", "/iaas/", &p);
        assert_eq!(sig, "32bseYy39DOlatuewpeuW5vpmW51sD1A/JdGynqSpP8=");
    }

    #[test]
    fn tv3_go_signer0_no_trailing_slash() {
        let p = Params::from_pairs([
            ("access_key_id", "ENV_ACCESS_KEY_ID"),
            ("action", "DescribeInstance"),
            ("instance.0", "i-xxxxxxxx"),
            ("signature_method", "HmacSHA256"),
            ("signature_version", "1"),
            ("time_stamp", "0001-01-01T00:00:00Z"),
            ("verbose", "1"),
        ]);
        let sig = sign(
            SignatureMethod::HmacSha256,
            "ENV_SECRET_ACCESS_KEY",
            "/iaas",
            &p,
        );
        assert_eq!(sig, "ZHa2iQ8PeyP1ktMF9C+DjOQBl537ti9RnYZ1Qqr6KRg=");
    }

    #[test]
    fn tv4_hmac_sha1() {
        let p = tv1_params("pek3a", "HmacSHA1");
        let sig = sign(SignatureMethod::HmacSha1, "SECRETACCESSKEY", "/iaas/", &p);
        assert_eq!(sig, "J6HXH2ms54sgN+hVb2Hli8M9IQM=");
    }

    #[test]
    fn tv5_custom_service() {
        let sp = r#"{"database":"*","host":"%","passwd":"Passwd@123","priv":"StandardAccount","ssl":"NO","user":"u1"}"#;
        let p = Params::from_pairs([
            ("access_key_id", "QYACCESSKEYIDEXAMPLE"),
            ("action", "RunClusterCustomService"),
            ("cluster", "cl-ouhutv70"),
            ("role", "maininstance"),
            ("service", "add_user"),
            ("service_params", sp),
            ("signature_method", "HmacSHA256"),
            ("signature_version", "1"),
            ("time_stamp", "2013-08-27T14:30:10Z"),
            ("version", "1"),
            ("zone", "sh1a"),
        ]);
        assert!(string_to_sign("GET", "/iaas/", &p).contains(
            "service_params=%7B%22database%22%3A%22%2A%22%2C%22host%22%3A%22%25%22%2C%22passwd%22%3A%22Passwd%40123%22"
        ));
        let sig = sign(SignatureMethod::HmacSha256, "SECRETACCESSKEY", "/iaas/", &p);
        assert_eq!(sig, "AbV9j6iOCOZgL/EgPSi1hwCh+H7NsqNT1t6l5BZAExo=");
    }

    #[test]
    fn reserved_characters_are_encoded_upper_case_and_unreserved_kept() {
        let q = canonical_query(
            [("k", "a b+c*d/e~f-g_h.i:j&k=l%m@n,o")]
                .iter()
                .map(|(a, b)| (*a, *b)),
        );
        assert_eq!(q, "k=a%20b%2Bc%2Ad%2Fe~f-g_h.i%3Aj%26k%3Dl%25m%40n%2Co");
    }

    #[test]
    fn utf8_and_empty_values_and_sort_order() {
        let q = canonical_query(
            [
                ("vxnets.2", ""),
                ("vxnets.10", "x"),
                ("name", "数据库"),
                ("Zed", "1"),
                ("_u", "2"),
                ("signature", "ignored"),
            ]
            .iter()
            .map(|(a, b)| (*a, *b)),
        );
        assert_eq!(
            q,
            "Zed=1&_u=2&name=%E6%95%B0%E6%8D%AE%E5%BA%93&vxnets.10=x&vxnets.2="
        );
    }

    #[test]
    fn matches_is_constant_time_compare_of_decoded_bytes() {
        let p = tv1_params("pek3a", "HmacSHA256");
        let sig = compute(
            SignatureMethod::HmacSha256,
            b"SECRETACCESSKEY",
            &string_to_sign("GET", "/iaas/", &p),
        );
        assert!(sig.matches("byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw="));
        // a `+` that a decoder turned into a space
        assert!(sig.matches("byjccvWIvAftaq oublemagH3bYAlDWxxLFAzAsyslw="));
        assert!(!sig.matches("byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsysl0="));
        assert!(!sig.matches("not base64!"));
        assert!(!sig.matches(""));
        // same MAC under a different path
        let other = compute(
            SignatureMethod::HmacSha256,
            b"SECRETACCESSKEY",
            &string_to_sign("GET", "/iaas", &p),
        );
        assert!(!other.matches("byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw="));
    }

    /// The canonical query of the pairs in `raw`, the slow way.
    fn recanonicalised(raw: &str) -> Option<String> {
        let mut p = Params::parse(&[raw.as_bytes()]).ok()?;
        p.take("signature");
        Some(canonical_query(p.iter()))
    }

    const TV1_CANONICAL: &str = "access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek3a";

    #[test]
    fn a_canonical_query_string_is_signed_as_it_stands() {
        // The docs' example as the Python SDK puts it on the wire.
        let wire =
            format!("{TV1_CANONICAL}&signature=byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D");
        let pieces = canonical_in_raw(&wire).expect("canonical");
        assert_eq!(pieces, [TV1_CANONICAL, "", ""]);
        let keyed = Keyed::new(b"SECRETACCESSKEY");
        let mac = keyed.sign_parts(
            SignatureMethod::HmacSha256,
            &["GET", "\n", "/iaas/", "\n", pieces[0], pieces[1], pieces[2]],
        );
        assert!(mac.matches("byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw="));
        // The signature pair may be anywhere; the rest is joined around it.
        let (a, b) = TV1_CANONICAL.split_at(TV1_CANONICAL.find("&image_id").expect("pair"));
        let middle = format!("{a}&signature=x{b}");
        assert_eq!(canonical_in_raw(&middle), Some([a, "&", &b[1..]]));
        let first = format!("signature=x&{TV1_CANONICAL}");
        assert_eq!(canonical_in_raw(&first), Some(["", "", TV1_CANONICAL]));
        assert_eq!(canonical_in_raw("signature=x"), Some(["", "", ""]));
        // Escaped bytes that are not unreserved, UTF-8 and empty values.
        let q = "a=%E6%95%B0%20%2B%25%3D%26&b=&signature=x&zone=~.-_";
        assert_eq!(canonical_in_raw(q).map(|p| p.concat()), recanonicalised(q));
    }

    #[test]
    fn anything_not_canonical_is_canonicalised_from_the_parameters() {
        for q in [
            "",
            "a=1",                         // no signature
            "a=1&signature=x&signature=y", // two
            "b=1&a=2&signature=x",         // out of order
            "a=1&a=1&signature=x",         // repeated
            "a=x+y&signature=x",           // `+` for a space
            "a=%3a&signature=x",           // lower-case hex
            "a=%41&signature=x",           // an escaped unreserved byte
            "a=%4&signature=x",            // a cut escape
            "a=%&signature=x",
            "a=1:2&signature=x", // a byte that must be escaped
            "a&signature=x",     // a bare name
            "a=1&&signature=x",  // an empty segment
            "a=1&signature=x&",
            "%61=1&signature=x", // an escaped name
            "=1&signature=x",    // an empty name
            "a=1=2&signature=x",
            "a=\u{e9}&signature=x", // raw UTF-8
        ] {
            assert_eq!(canonical_in_raw(q), None, "{q}");
        }
        // Each of those still verifies the slow way when it decodes.
        assert_eq!(
            recanonicalised("a=x+y&signature=x").as_deref(),
            Some("a=x%20y")
        );
        assert_eq!(recanonicalised("a=%41&signature=x").as_deref(), Some("a=A"));
    }

    #[test]
    fn the_bytes_kept_as_is_are_the_ones_the_encoder_keeps() {
        for b in 0..=255u8 {
            let kept = b.is_ascii() && encode(&char::from(b).to_string()).to_string().len() == 1;
            assert_eq!(UNRESERVED[usize::from(b)], kept, "{b:#04x}");
        }
    }

    /// Random queries over the bytes that matter: whenever one is taken as
    /// canonical, it is what canonicalising its parameters gives.
    #[test]
    fn both_ways_agree_on_random_queries() {
        const NAMES: [&str; 8] = ["a", "b", "Z", "a.1", "a.10", "signature", "%61", "b~"];
        const BITS: [&str; 16] = [
            "x",
            "0",
            "~",
            ".",
            "-",
            "%2",
            "%3A",
            "%3a",
            "%41",
            "%E6%95%B0",
            "%95",
            "+",
            "%20",
            "=",
            "&",
            "%25",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut taken, mut compared) = (0, 0);
        for _ in 0..100_000 {
            let mut q = String::new();
            for i in 0..1 + next(4) {
                if i > 0 {
                    q.push('&');
                }
                q.push_str(NAMES[next(NAMES.len())]);
                q.push_str(["=", "=", "=", ""][next(4)]);
                for _ in 0..next(4) {
                    q.push_str(BITS[next(BITS.len())]);
                }
            }
            if let Some(pieces) = canonical_in_raw(&q) {
                taken += 1;
                if let Some(slow) = recanonicalised(&q) {
                    compared += 1;
                    assert_eq!(pieces.concat(), slow, "{q}");
                }
            }
        }
        // Enough of them take the fast way for the comparison to mean something.
        assert!(taken > 1_000 && compared > 1_000, "{taken} {compared}");
    }
}

#[cfg(test)]
mod zeroize_check {
    /// Compiles only while the hash states an HMAC is made of (its inner
    /// and outer digests) wipe themselves when dropped: the `zeroize`
    /// features of `sha1` and `sha2` in Cargo.toml.
    #[test]
    fn keyed_states_are_wiped_on_drop() {
        fn wiped<T: zeroize::ZeroizeOnDrop>() {}
        wiped::<<sha2::Sha256 as hmac::EagerHash>::Core>();
        wiped::<<sha1::Sha1 as hmac::EagerHash>::Core>();
    }
}
