//! JSON text this process wrote itself: it goes into a reply as it is. (A
//! `RawValue` is parsed again whenever it is made from text, ~0.9 µs for a
//! job's entry: that is what a job kept packed in memory would pay on every
//! poll.)
//!
//! [`Object`] writes the objects a job is stored and shown as. Their long
//! strings (a job's directive is JSON inside a JSON string) were ~8% of a
//! write's instructions in serde_json's byte-at-a-time escaping; here they
//! are escaped by `json_escape_simd`, to the same bytes (a test compares).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written(Box<str>);

impl Written {
    /// In a block of its exact size: a `String` grown by doubling would keep
    /// a 1 KiB block for a ~650-byte job entry.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Written> {
        Ok(Written(serde_json::to_string(value)?.into_boxed_str()))
    }

    /// Text that was a `Written` before (unpacked from memory). Only what
    /// [`Written::get`] gave may come back here.
    pub(crate) fn restore(text: Box<str>) -> Written {
        Written(text)
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

/// A JSON object written field by field, in the order given.
pub struct Object {
    out: Vec<u8>,
    empty: bool,
}

impl Object {
    /// `capacity`: the expected length, so the text is written in one block.
    pub fn with_capacity(capacity: usize) -> Object {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Object { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !std::mem::take(&mut self.empty) {
            self.out.push(b',');
        }
        push_str(&mut self.out, key);
        self.out.push(b':');
    }

    /// A string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Object {
        self.key(key);
        push_str(&mut self.out, value);
        self
    }

    /// A field whose value is JSON text already (written by this process).
    pub fn json(&mut self, key: &str, value: &str) -> &mut Object {
        self.key(key);
        self.out.extend_from_slice(value.as_bytes());
        self
    }

    /// A field serialised by serde_json now.
    pub fn value<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> serde_json::Result<&mut Object> {
        self.key(key);
        serde_json::to_writer(&mut self.out, value)?;
        Ok(self)
    }

    /// An array field of JSON texts written before.
    pub fn list<'a>(&mut self, key: &str, items: impl IntoIterator<Item = &'a str>) -> &mut Object {
        self.key(key);
        self.out.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(item.as_bytes());
        }
        self.out.push(b']');
        self
    }

    /// The text as bytes.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }

    pub fn finish(mut self) -> String {
        self.out.push(b'}');
        // Only UTF-8 went in (`str`s, escaped as JSON, and ASCII punctuation),
        // so this never replaces anything; it would rather than lose text.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// In a block of its exact size, like [`Written::of`].
    pub fn written(self) -> Written {
        Written(self.finish().into_boxed_str())
    }
}

/// Strings longer than this are escaped by serde_json: the SIMD escaper
/// reserves six bytes per byte of input up front, and a request may carry a
/// megabyte of parameters into its directive.
const SIMD_MAX: usize = 16 * 1024;

/// Appends `s` as a JSON string, quotes included, escaped as serde_json does.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if s.len() <= SIMD_MAX {
        json_escape_simd::escape_into(s, out);
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ASCII character, at every offset of a run long enough for the
    /// SIMD paths and their tails, and some characters past ASCII.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
        cases.extend(["é", "漢字", "😀", "\u{2028}", "a\"b\\c\u{7f}", ""].map(String::from));
        for c in (0u8..0x80).step_by(7).map(|b| b as char) {
            for at in 0..70 {
                let mut s: String = "x".repeat(70);
                s.insert(at, c);
                cases.push(s);
            }
        }
        let long = format!("{}\"{}", "a\\b".repeat(SIMD_MAX / 2), "é".repeat(100));
        assert!(long.len() > SIMD_MAX);
        cases.push(long);
        for s in &cases {
            let mut out = Vec::new();
            push_str(&mut out, s);
            let want = serde_json::to_string(s).expect("json");
            assert_eq!(String::from_utf8(out).expect("utf8"), want, "{s:?}");
        }
    }

    #[test]
    fn an_object_is_what_serde_json_writes_for_the_same_map() {
        let mut o = Object::with_capacity(8);
        o.str("a", "x\"y\n").json("b", "[1,2]").str("c\"", "");
        let want = serde_json::json!({"a": "x\"y\n", "b": [1, 2], "c\"": ""});
        assert_eq!(o.finish(), want.to_string());
        assert_eq!(Object::with_capacity(0).finish(), "{}");
    }

    #[test]
    fn written_text_is_what_serde_json_writes() {
        let w = Written::of(&serde_json::json!({"b": "x\"y", "a": [1, 2]})).expect("json");
        assert_eq!(w.get(), r#"{"a":[1,2],"b":"x\"y"}"#);
    }
}
