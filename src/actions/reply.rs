//! What an action answers: the fields beside `action` and `ret_code`, which
//! the edge adds. A field is a JSON value, or JSON already written: a list
//! of rows serialised straight from its structs skips building a tree of
//! maps first (a third of a DescribeJobs reply's serialisation).

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, Default)]
pub struct Reply {
    // Sorted, as serde_json's own maps are: replies keep their key order.
    fields: BTreeMap<String, Field>,
}

#[derive(Debug)]
enum Field {
    Value(Value),
    Written(Box<RawValue>),
}

impl Reply {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: String, value: Value) {
        self.fields.insert(key, Field::Value(value));
    }

    /// Serialises `value` now, into this field.
    pub fn insert_serialized<T: Serialize + ?Sized>(
        &mut self,
        key: String,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let written = serde_json::value::to_raw_value(value)?;
        self.fields.insert(key, Field::Written(written));
        Ok(())
    }
}

impl From<serde_json::Map<String, Value>> for Reply {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        Reply {
            fields: map.into_iter().map(|(k, v)| (k, Field::Value(v))).collect(),
        }
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            match v {
                Field::Value(v) => map.serialize_entry(k, v)?,
                Field::Written(w) => map.serialize_entry(k, w)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_built_fields_serialise_alike_in_key_order() {
        #[derive(serde::Serialize)]
        struct Row {
            b: u8,
            a: &'static str,
        }
        let rows = [Row { b: 1, a: "x\"y" }];
        let mut written = Reply::new();
        written.insert("total".into(), Value::from(1));
        written
            .insert_serialized("set".into(), &rows)
            .expect("rows");
        let mut built = serde_json::Map::new();
        built.insert("total".into(), Value::from(1));
        built.insert("set".into(), serde_json::to_value(&rows).expect("rows"));
        // A Value map sorts the row's keys; the struct keeps its field order.
        assert_eq!(
            serde_json::to_string(&written).expect("json"),
            r#"{"set":[{"b":1,"a":"x\"y"}],"total":1}"#
        );
        assert_eq!(
            serde_json::to_string(&built).expect("json"),
            r#"{"set":[{"a":"x\"y","b":1}],"total":1}"#
        );
    }
}

#[cfg(test)]
mod job_view_order {
    use crate::store::jobs::JobView;

    #[test]
    fn a_job_view_is_written_with_sorted_keys_like_every_other_object() {
        let v = JobView {
            create_time: "t".into(),
            directive: "{}".into(),
            error_codes: String::new(),
            error_message: "m".into(),
            job_action: "A".into(),
            job_id: "j-0".into(),
            output: "o".into(),
            owner: "usr-0".into(),
            resource_ids: "cl-0".into(),
            status: "failed".into(),
            status_time: "t".into(),
        };
        let text = serde_json::to_string(&v).expect("json");
        let sorted = serde_json::to_value(&v).expect("value").to_string();
        assert_eq!(text, sorted);
    }
}
