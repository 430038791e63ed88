//! A job's view entry packed for the job views: its fields LZ4-compressed
//! against an earlier entry of the same action (its *example*). Jobs of one
//! burst differ in a few fields (id, times, `req_id`, cluster), so a ~750-byte
//! `start_standby` entry packs into ~120 bytes with its filter fields, and
//! the same memory keeps about five times as many jobs answerable without
//! SQLite (~170 bytes a job with its slot, against ~970).
//!
//! The job id is kept beside the block, not in it: a new job's entry is
//! packed by the request's thread before the writer gives the job its seq
//! (and so its id), and the writer only puts the id in front (`with_id`).
//! Each thread packs against examples of its own, so that the request
//! threads never wait on one another's packing; any reader unpacks
//! (~0.3 µs).

use std::collections::HashMap;
use std::sync::Arc;

use super::jobs::JobEntry;
use crate::written::Written;

/// Examples kept per action: bursts of a few shapes at once still pack well.
const EXAMPLES: usize = 4;

/// A packed entry smaller than this share of its record is good enough;
/// otherwise the record becomes an example itself.
const GOOD_DIVISOR: usize = 3;

/// An allocation's header and rounding, roughly.
const ALLOC: usize = 16;

/// Where a view's JSON names its job: the id follows, then `"`.
const ID_KEY: &[u8] = b"\"job_id\":\"";

#[derive(Clone)]
pub struct Packed {
    example: Arc<[u8]>,
    /// The id's length (one byte) and the id, the record's length (u32 LE),
    /// then its LZ4 block.
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

    /// The same entry with job id `id` (one up to 255 bytes).
    pub fn with_id(&self, id: &str) -> Option<Packed> {
        let (&old, rest) = self.data.split_first()?;
        let rest = rest.get(old as usize..)?;
        let len = u8::try_from(id.len()).ok()?;
        let mut data = Vec::with_capacity(1 + id.len() + rest.len());
        data.push(len);
        data.extend_from_slice(id.as_bytes());
        data.extend_from_slice(rest);
        Some(Packed {
            example: self.example.clone(),
            data: data.into_boxed_slice(),
        })
    }

    /// The entry again; `None` if the bytes do not decode (they always do:
    /// a reader would then ask SQLite).
    pub fn unpack(&self, seq: i64) -> Option<JobEntry> {
        let (&id_len, rest) = self.data.split_first()?;
        let (id, rest) = rest.split_at_checked(id_len as usize)?;
        let id = std::str::from_utf8(id).ok()?;
        let (len, block) = rest.split_first_chunk::<4>()?;
        let mut record = vec![0u8; u32::from_le_bytes(*len) as usize];
        let n =
            lz4_flex::block::decompress_into_with_dict(block, &mut record, &self.example).ok()?;
        record.truncate(n);
        let mut fields = Fields(&record);
        let (owner, zone, status, action, resource_ids) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let (before, after) = (fields.next()?, fields.next()?);
        let mut json = String::with_capacity(before.len() + id.len() + after.len());
        json.push_str(before);
        json.push_str(id);
        json.push_str(after);
        Some(JobEntry {
            seq,
            id: id.into(),
            owner: owner.into(),
            zone: zone.into(),
            status: status.into(),
            action: action.into(),
            resource_ids: resource_ids.into(),
            json: Written::restore(json.into_boxed_str()),
        })
    }
}

thread_local! {
    static PACKER: std::cell::RefCell<Packer> = std::cell::RefCell::default();
}

/// [`Packer::pack`] with this thread's examples.
pub fn pack(entry: &JobEntry) -> Option<Packed> {
    PACKER.with_borrow_mut(|p| p.pack(entry))
}

/// The examples, newest last, per action.
#[derive(Default)]
pub struct Packer {
    examples: HashMap<String, Vec<Arc<[u8]>>>,
}

impl Packer {
    /// `None` when its JSON does not name `entry.id` as its `job_id`, or the
    /// id is longer than 255 bytes (never, for the views' own entries).
    pub fn pack(&mut self, entry: &JobEntry) -> Option<Packed> {
        let id = u8::try_from(entry.id.len())
            .ok()
            .map(|_| entry.id.as_str())?;
        let record = record(entry)?;
        let examples = match self.examples.get_mut(entry.action.as_str()) {
            Some(list) => list,
            None => self.examples.entry(entry.action.clone()).or_default(),
        };
        for i in (0..examples.len()).rev() {
            let data = compress(id, &record, &examples[i]);
            if (data.len() - 1 - id.len()) * GOOD_DIVISOR <= record.len() {
                let example = examples.remove(i);
                examples.push(example.clone());
                return Some(Packed { example, data });
            }
        }
        let example: Arc<[u8]> = record.into();
        if examples.len() == EXAMPLES {
            examples.remove(0);
        }
        examples.push(example.clone());
        Some(Packed {
            data: compress(id, &example, &example),
            example,
        })
    }
}

/// `id` (at most 255 bytes) after its length, then the record's length and its block.
fn compress(id: &str, record: &[u8], example: &[u8]) -> Box<[u8]> {
    let head = 1 + id.len() + 4;
    let mut out = vec![0u8; head + lz4_flex::block::get_maximum_output_size(record.len())];
    out[0] = id.len() as u8;
    out[1..1 + id.len()].copy_from_slice(id.as_bytes());
    out[head - 4..head].copy_from_slice(&(record.len() as u32).to_le_bytes());
    // The output has the room LZ4 can need, so this cannot fail.
    let n =
        lz4_flex::block::compress_into_with_dict(record, &mut out[head..], example).unwrap_or(0);
    out.truncate(head + n);
    out.into_boxed_slice()
}

/// The fields, each after its length (u32 LE), in [`Packed::unpack`]'s
/// order: the JSON in two, before and after its job id.
fn record(e: &JobEntry) -> Option<Vec<u8>> {
    let json = e.json.get();
    let at = memchr::memmem::find_iter(json.as_bytes(), ID_KEY)
        .map(|k| k + ID_KEY.len())
        .find(|&at| {
            json[at..]
                .strip_prefix(e.id.as_str())
                .is_some_and(|rest| rest.starts_with('"'))
        })?;
    let fields = [
        e.owner.as_str(),
        &e.zone,
        &e.status,
        &e.action,
        &e.resource_ids,
        &json[..at],
        &json[at + e.id.len()..],
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| 4 + f.len()).sum());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    Some(out)
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
        let p1 = packer.pack(&first).expect("packs");
        assert!(same(&p1.unpack(1).expect("unpacks"), &first));
        for n in 2..50 {
            let e = entry(n, "RunClusterCustomService", DIRECTIVE);
            let p = packer.pack(&e).expect("packs");
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
        let first = packer
            .pack(&entry(1, "RunClusterCustomService", DIRECTIVE))
            .expect("packs");
        // Letters without a period, which LZ4 cannot shorten.
        let mut x: u32 = 1;
        let other: String = (0..300)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + (x >> 16) as u8 % 26)
            })
            .collect();
        let odd = packer
            .pack(&entry(2, "RunClusterCustomService", &other))
            .expect("packs");
        assert_ne!(
            odd.example(),
            first.example(),
            "an unlike shape made its own"
        );
        let back = packer
            .pack(&entry(3, "RunClusterCustomService", DIRECTIVE))
            .expect("packs");
        assert_eq!(
            back.example(),
            first.example(),
            "the first shape kept its example"
        );
        let text = "é — ✓ 中文";
        let unicode = entry(4, "CreateCluster", text);
        assert!(same(
            &packer
                .pack(&unicode)
                .expect("packs")
                .unpack(4)
                .expect("unpacks"),
            &unicode
        ));
    }

    #[test]
    fn an_entry_packed_before_its_id_is_known_unpacks_with_the_id_put_in_front() {
        let mut packer = Packer::default();
        let known = entry(7, "RunClusterCustomService", DIRECTIVE);
        let mut early = entry(7, "RunClusterCustomService", DIRECTIVE);
        early.id.clear();
        early.json = Written::restore(
            known
                .json
                .get()
                .replace(&format!("\"job_id\":\"{}\"", known.id), "\"job_id\":\"\"")
                .into(),
        );
        let p = packer.pack(&early).expect("packs");
        assert!(same(&p.unpack(7).expect("unpacks"), &early));
        let p = p.with_id(&known.id).expect("an id of 13 bytes");
        assert!(same(&p.unpack(7).expect("unpacks"), &known));
        // Another id, longer: the block is the same, the JSON names the new one.
        let other = p.with_id("j-longer-than-before").expect("id");
        let back = other.unpack(7).expect("unpacks");
        assert_eq!(back.id, "j-longer-than-before");
        assert!(
            back.json
                .get()
                .contains(r#""job_id":"j-longer-than-before","#)
        );
        assert!(p.with_id(&"x".repeat(256)).is_none());
    }

    #[test]
    fn an_entry_whose_json_does_not_name_its_id_is_not_packed() {
        let mut packer = Packer::default();
        let mut e = entry(8, "RunClusterCustomService", DIRECTIVE);
        e.id = "j-00000000009".into();
        assert!(packer.pack(&e).is_none());
        // The id inside the directive's escaped text is not the view's job_id.
        let inner = format!(r#"{{"x":"\"job_id\":\"{}\""}}"#, e.id);
        let mut e = entry(8, "RunClusterCustomService", &inner);
        e.id = "j-00000000009".into();
        assert!(packer.pack(&e).is_none());
    }

    #[test]
    fn damaged_bytes_unpack_to_nothing_rather_than_panicking() {
        let mut packer = Packer::default();
        let p = packer
            .pack(&entry(1, "RunClusterCustomService", DIRECTIVE))
            .expect("packs");
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
