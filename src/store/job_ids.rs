//! Job ids are the job's `seq` under a keyed permutation of `[0, 36^11)`,
//! written as `j-` + 11 base-36 characters. They look random and are unique
//! by construction, and an id turns back into its row's primary key, so the
//! jobs table needs no index on ids: an insert into an index keyed by random
//! ids wrote a page of its own per job.
//!
//! The ids are not secrets (every lookup is scoped to the caller's owner);
//! the key only keeps the job count out of them. It lives in the database's
//! `meta` table. SQL sees the codec as `job_id(seq)` and `job_seq(id)`.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const DIGITS: usize = 11;
/// 36^11: the ids there are.
const SPACE: u64 = 131_621_703_842_267_136;
/// The permutation runs on 58 bits (two 29-bit halves); values that land
/// outside `SPACE` are permuted again (cycle walking), ~2.2 rounds on average.
const HALF: u32 = 29;
const MASK: u64 = (1 << HALF) - 1;
const ROUNDS: usize = 8;

pub const KEY_NAME: &str = "job_id_key";

#[derive(Clone)]
pub struct JobIds {
    keys: [u64; ROUNDS],
}

impl JobIds {
    /// A key as stored (`meta.job_id_key`), whichever database holds it.
    pub fn from_hex(text: &str) -> Option<JobIds> {
        let mut keys = [0u64; ROUNDS];
        let mut chunks = text.as_bytes().chunks(16);
        for k in &mut keys {
            let chunk = std::str::from_utf8(chunks.next()?).ok()?;
            *k = u64::from_str_radix(chunk, 16).ok()?;
        }
        Some(JobIds { keys })
    }

    /// The key of this database, made on first use (read-write connections).
    pub fn load_or_create(conn: &Connection) -> Result<JobIds, StoreError> {
        if let Some(ids) = Self::load(conn)? {
            return Ok(ids);
        }
        let text = Self::fresh_hex();
        // OR IGNORE: a concurrent first open may have won; read back the winner.
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
            [KEY_NAME, &text],
        )?;
        Self::load(conn)?.ok_or_else(|| StoreError::Commit("job id key missing".into()))
    }

    /// A new random key, as stored.
    pub fn fresh_hex() -> String {
        (0..ROUNDS)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect()
    }

    pub fn load(conn: &Connection) -> Result<Option<JobIds>, StoreError> {
        let text: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [KEY_NAME], |r| {
                r.get(0)
            })
            .optional()?;
        match text {
            None => Ok(None),
            Some(t) => Self::from_hex(&t)
                .map(Some)
                .ok_or_else(|| StoreError::Commit("the job id key is damaged".into())),
        }
    }

    fn round(&self, i: usize, half: u64) -> u64 {
        // splitmix64's finaliser over the half and the round key.
        let mut z = half ^ self.keys[i];
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) & MASK
    }

    fn permute(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> HALF, x & MASK);
        for i in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(i, r));
        }
        (l << HALF) | r
    }

    fn unpermute(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> HALF, x & MASK);
        for i in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(i, l), l);
        }
        (l << HALF) | r
    }

    pub fn encode(&self, seq: i64) -> Option<String> {
        let mut x = u64::try_from(seq).ok().filter(|&s| s < SPACE)?;
        loop {
            x = self.permute(x);
            if x < SPACE {
                break;
            }
        }
        let mut digits = [0u8; DIGITS];
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(x % 36) as usize];
            x /= 36;
        }
        let mut id = String::with_capacity(2 + DIGITS);
        id.push_str("j-");
        id.extend(digits.iter().map(|&b| b as char));
        Some(id)
    }

    /// The seq an id names, if it is one of ours in form (it may name no job).
    pub fn decode(&self, id: &str) -> Option<i64> {
        let digits = id.strip_prefix("j-")?.as_bytes();
        if digits.len() != DIGITS {
            return None;
        }
        let mut x: u64 = 0;
        for &b in digits {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'z' => b - b'a' + 10,
                _ => return None,
            };
            x = x * 36 + u64::from(d);
        }
        loop {
            x = self.unpermute(x);
            if x < SPACE {
                break;
            }
        }
        i64::try_from(x).ok()
    }

    /// Makes `job_id(seq)` and `job_seq(id)` available to SQL on `conn`.
    pub fn register(&self, conn: &Connection) -> Result<(), StoreError> {
        let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
        let ids = self.clone();
        conn.create_scalar_function("job_id", 1, flags, move |ctx| {
            Ok(ids.encode(ctx.get::<i64>(0)?))
        })?;
        let ids = self.clone();
        conn.create_scalar_function("job_seq", 1, flags, move |ctx| {
            Ok(ctx.get::<Option<String>>(0)?.and_then(|id| ids.decode(&id)))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> JobIds {
        JobIds {
            keys: [1, 2, 3, 4, 5, 6, 7, 8].map(|k: u64| k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    #[test]
    fn ids_round_trip_and_are_distinct() {
        let ids = codec();
        let mut seen = std::collections::HashSet::new();
        for seq in (1..20_000).chain([SPACE as i64 - 1]) {
            let id = ids.encode(seq).expect("in range");
            assert_eq!(id.len(), 13);
            assert!(id[2..].bytes().all(|b| ALPHABET.contains(&b)), "{id}");
            assert_eq!(ids.decode(&id), Some(seq), "{id}");
            assert!(seen.insert(id));
        }
        // Consecutive jobs do not get neighbouring ids.
        let (a, b) = (ids.encode(1).expect("id"), ids.encode(2).expect("id"));
        assert_ne!(a[2..7], b[2..7]);
    }

    #[test]
    fn malformed_ids_decode_to_nothing() {
        let ids = codec();
        for bad in [
            "",
            "j-",
            "j-abc",
            "x-0123456789a",
            "j-0123456789A",
            "j-0123456789ab",
        ] {
            assert_eq!(ids.decode(bad), None, "{bad}");
        }
        assert_eq!(ids.encode(-1), None);
        assert_eq!(ids.encode(SPACE as i64), None);
    }

    #[test]
    fn another_key_gives_other_ids() {
        let other = JobIds {
            keys: [9, 10, 11, 12, 13, 14, 15, 16],
        };
        assert_ne!(codec().encode(7), other.encode(7));
    }
}
