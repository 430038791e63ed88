//! What an action answers: the fields beside `action` and `ret_code`, which
//! the edge adds. A field is a JSON value, or JSON already written: a list
//! of rows serialised straight from its structs skips building a tree of
//! maps first (a third of a DescribeJobs reply's serialisation), and rows
//! written earlier (a job's entry) are copied in as they are.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::written::{Object, Written};

#[derive(Debug, Default)]
pub struct Reply {
    // Sorted, as serde_json's own maps are: replies keep their key order.
    fields: BTreeMap<String, Field>,
}

#[derive(Debug)]
enum Field {
    Value(Value),
    Written(Written),
    List(Vec<Written>),
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
        self.fields.insert(key, Field::Written(Written::of(value)?));
        Ok(())
    }

    /// The job ids the reply names (`job_id`, `job_ids`), for the log.
    pub fn job_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        if let Some(Field::Value(Value::String(id))) = self.fields.get("job_id") {
            ids.push(id.clone());
        }
        if let Some(Field::Value(Value::Object(map))) = self.fields.get("job_ids") {
            ids.extend(map.values().filter_map(|v| v.as_str().map(str::to_string)));
        }
        ids
    }

    /// A JSON array of rows written before.
    pub fn insert_list(&mut self, key: String, rows: Vec<Written>) {
        self.fields.insert(key, Field::List(rows));
    }

    /// The reply as one JSON object, keys in order.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let written: usize = self
            .fields
            .values()
            .map(|f| match f {
                Field::Value(_) => 16,
                Field::Written(w) => w.get().len(),
                Field::List(rows) => rows.iter().map(|r| r.get().len() + 1).sum(),
            })
            .sum();
        let mut o = Object::with_capacity(written + 32 * self.fields.len() + 2);
        for (key, field) in &self.fields {
            match field {
                Field::Value(v) => o.value(key, v)?,
                Field::Written(w) => o.json(key, w.get()),
                Field::List(rows) => o.list(key, rows.iter().map(Written::get)),
            };
        }
        Ok(o.into_bytes())
    }
}

impl From<serde_json::Map<String, Value>> for Reply {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        Reply {
            fields: map.into_iter().map(|(k, v)| (k, Field::Value(v))).collect(),
        }
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
        let row = Written::of(&rows[0]).expect("row");
        written.insert_list("list".into(), vec![row.clone(), row]);
        written.insert_list("none".into(), Vec::new());
        let mut built = serde_json::Map::new();
        built.insert("total".into(), Value::from(1));
        built.insert("set".into(), serde_json::to_value(&rows).expect("rows"));
        let two = [&rows[0], &rows[0]];
        built.insert("list".into(), serde_json::to_value(two).expect("rows"));
        built.insert("none".into(), Value::Array(Vec::new()));
        // A Value map sorts the row's keys; the struct keeps its field order.
        assert_eq!(
            String::from_utf8(written.to_json().expect("json")).expect("utf-8"),
            r#"{"list":[{"b":1,"a":"x\"y"},{"b":1,"a":"x\"y"}],"none":[],"set":[{"b":1,"a":"x\"y"}],"total":1}"#
        );
        assert_eq!(
            serde_json::to_string(&built).expect("json"),
            r#"{"list":[{"a":"x\"y","b":1},{"a":"x\"y","b":1}],"none":[],"set":[{"a":"x\"y","b":1}],"total":1}"#
        );
        // Keys that need escaping are escaped.
        let mut odd = Reply::new();
        odd.insert("a\"b".into(), Value::from("c"));
        assert_eq!(odd.to_json().expect("json"), br#"{"a\"b":"c"}"#);
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
