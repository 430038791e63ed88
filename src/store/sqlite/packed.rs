//! A job's view entry packed for the job views: its fields LZ4-compressed
//! against an earlier entry of the same action (its *example*). Jobs of one
//! burst differ in a few fields (id, times, `req_id`, cluster), so a ~750-byte
//! `start_standby` entry packs into ~120 bytes with its filter fields, and
//! the same memory keeps about five times as many jobs answerable without
//! SQLite (~170 bytes a job with its slot, against ~970).
//!
//! Only the writer packs; any reader unpacks (~0.2 µs).

use std::collections::HashMap;
use std::sync::Arc;

use super::job_rows::JobEntry;
use crate::written::Written;

/// Examples kept per action: bursts of a few shapes at once still pack well.
const EXAMPLES: usize = 4;

/// A packed entry smaller than this share of its record is good enough;
/// otherwise the record becomes an example itself.
const GOOD_DIVISOR: usize = 3;

/// An allocation's header and rounding, roughly.
const ALLOC: usize = 16;

pub struct Packed {
    example: Arc<[u8]>,
    /// The record's length (u32 LE), then its LZ4 block.
    data: Box<[u8]>,
}

impl Packed {
    /// Bytes of the entry's own block (its example is shared).
    pub fn footprint(&self) -> usize {
        self.data.len() + ALLOC
    }

    /// Which example it needs (the same for entries sharing one, while any
    /// of them lives) and that example's bytes.
    pub fn example(&self) -> (usize, usize) {
        (
            Arc::as_ptr(&self.example) as *const u8 as usize,
            self.example.len() + ALLOC,
        )
    }

    /// The entry again; `None` if the bytes do not decode (they always do:
    /// a reader would then ask SQLite).
    pub fn unpack(&self, seq: i64) -> Option<JobEntry> {
        let (len, block) = self.data.split_first_chunk::<4>()?;
        let mut record = vec![0u8; u32::from_le_bytes(*len) as usize];
        let n =
            lz4_flex::block::decompress_into_with_dict(block, &mut record, &self.example).ok()?;
        record.truncate(n);
        let mut fields = Fields(&record);
        Some(JobEntry {
            seq,
            id: fields.next()?.into(),
            owner: fields.next()?.into(),
            zone: fields.next()?.into(),
            status: fields.next()?.into(),
            action: fields.next()?.into(),
            resource_ids: fields.next()?.into(),
            json: Written::restore(fields.next()?.into()),
        })
    }
}

/// The writer's examples, newest last, per action.
#[derive(Default)]
pub struct Packer {
    examples: HashMap<String, Vec<Arc<[u8]>>>,
}

impl Packer {
    pub fn pack(&mut self, entry: &JobEntry) -> Packed {
        let record = record(entry);
        let examples = match self.examples.get_mut(entry.action.as_str()) {
            Some(list) => list,
            None => self.examples.entry(entry.action.clone()).or_default(),
        };
        for i in (0..examples.len()).rev() {
            let data = compress(&record, &examples[i]);
            if data.len() * GOOD_DIVISOR <= record.len() {
                let example = examples.remove(i);
                examples.push(example.clone());
                return Packed { example, data };
            }
        }
        let example: Arc<[u8]> = record.into();
        if examples.len() == EXAMPLES {
            examples.remove(0);
        }
        examples.push(example.clone());
        Packed {
            data: compress(&example, &example),
            example,
        }
    }
}

fn compress(record: &[u8], example: &[u8]) -> Box<[u8]> {
    let mut out = vec![0u8; 4 + lz4_flex::block::get_maximum_output_size(record.len())];
    out[..4].copy_from_slice(&(record.len() as u32).to_le_bytes());
    // The output has the room LZ4 can need, so this cannot fail.
    let n = lz4_flex::block::compress_into_with_dict(record, &mut out[4..], example).unwrap_or(0);
    out.truncate(4 + n);
    out.into_boxed_slice()
}

/// The fields, each after its length (u32 LE), in [`Packed::unpack`]'s order.
fn record(e: &JobEntry) -> Vec<u8> {
    let fields = [
        &e.id,
        &e.owner,
        &e.zone,
        &e.status,
        &e.action,
        &e.resource_ids,
        e.json.get(),
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| 4 + f.len()).sum());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// A record's fields. The lengths are ours, but one that runs past the end
/// or a field that is not UTF-8 ends it.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let field = rest.get(..len)?;
        self.0 = &rest[len..];
        std::str::from_utf8(field).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, action: &str, directive: &str) -> JobEntry {
        let json = serde_json::json!({
            "create_time": format!("2026-11-23T14:00:{:02}Z", n % 60),
            "directive": directive,
            "job_action": action,
            "job_id": format!("j-{n:011}"),
            "owner": "usr-packed01",
            "resource_ids": format!("cl-{n:08}"),
            "status": "pending",
        });
        JobEntry {
            seq: n.into(),
            id: format!("j-{n:011}"),
            owner: "usr-packed01".into(),
            zone: "pek3a".into(),
            status: "pending".into(),
            action: action.into(),
            resource_ids: format!("cl-{n:08}"),
            json: Written::of(&json).expect("json"),
        }
    }

    fn same(a: &JobEntry, b: &JobEntry) -> bool {
        (a.seq, &a.id, &a.owner, &a.zone, &a.status, &a.action)
            == (b.seq, &b.id, &b.owner, &b.zone, &b.status, &b.action)
            && a.resource_ids == b.resource_ids
            && a.json == b.json
    }

    const DIRECTIVE: &str = r#"{"action":"RunClusterCustomService","cluster":"cl-00000001","service":"start_standby","service_params":"{\"host\":\"127.0.0.1\",\"port\":3306,\"user\":\"repl\"}"}"#;

    #[test]
    fn entries_of_one_shape_pack_small_against_one_example_and_unpack_exactly() {
        let mut packer = Packer::default();
        let first = entry(1, "RunClusterCustomService", DIRECTIVE);
        let p1 = packer.pack(&first);
        assert!(same(&p1.unpack(1).expect("unpacks"), &first));
        for n in 2..50 {
            let e = entry(n, "RunClusterCustomService", DIRECTIVE);
            let p = packer.pack(&e);
            assert_eq!(p.example(), p1.example(), "entry {n} made an example");
            assert!(
                p.data.len() * 4 < first.json.get().len(),
                "{} bytes",
                p.data.len()
            );
            assert!(same(&p.unpack(n.into()).expect("unpacks"), &e));
        }
    }

    #[test]
    fn a_new_shape_gets_its_own_example_and_the_old_one_stays_usable() {
        let mut packer = Packer::default();
        let first = packer.pack(&entry(1, "RunClusterCustomService", DIRECTIVE));
        // Letters without a period, which LZ4 cannot shorten.
        let mut x: u32 = 1;
        let other: String = (0..300)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + (x >> 16) as u8 % 26)
            })
            .collect();
        let odd = packer.pack(&entry(2, "RunClusterCustomService", &other));
        assert_ne!(
            odd.example(),
            first.example(),
            "an unlike shape made its own"
        );
        let back = packer.pack(&entry(3, "RunClusterCustomService", DIRECTIVE));
        assert_eq!(
            back.example(),
            first.example(),
            "the first shape kept its example"
        );
        let text = "é — ✓ 中文";
        let unicode = entry(4, "CreateCluster", text);
        assert!(same(
            &packer.pack(&unicode).unpack(4).expect("unpacks"),
            &unicode
        ));
    }

    #[test]
    fn damaged_bytes_unpack_to_nothing_rather_than_panicking() {
        let mut packer = Packer::default();
        let p = packer.pack(&entry(1, "RunClusterCustomService", DIRECTIVE));
        for cut in 0..p.data.len() {
            let damaged = Packed {
                example: p.example.clone(),
                data: p.data[..cut].into(),
            };
            assert!(damaged.unpack(1).is_none(), "cut at {cut}");
        }
        let mut flipped = p.data.to_vec();
        flipped[0] ^= 0x40;
        let damaged = Packed {
            example: p.example.clone(),
            data: flipped.into(),
        };
        let _ = damaged.unpack(1);
    }
}
