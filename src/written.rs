//! JSON text this process wrote itself, with serde_json: it goes into a
//! reply as it is. (A `RawValue` is parsed again whenever it is made from
//! text, ~0.9 µs for a job's entry: that is what a job kept packed in
//! memory would pay on every poll.)

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_text_is_what_serde_json_writes() {
        let w = Written::of(&serde_json::json!({"b": "x\"y", "a": [1, 2]})).expect("json");
        assert_eq!(w.get(), r#"{"a":[1,2],"b":"x\"y"}"#);
    }
}
