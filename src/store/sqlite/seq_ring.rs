//! Slots by seq, for the job views: jobs take increasing seqs and the oldest
//! leave first, so slots indexed by `seq - base` need neither a hash table
//! nor a list of what came in when (~40 bytes a job less than a `HashMap`
//! with an order queue). A jump in seqs (jobs stored by another process)
//! starts a new segment rather than a run of empty slots.
//!
//! Slots come in chunks of a fixed size: a ring buffer that doubles would,
//! past a power of two, hold twice the slots it uses, and the views' budget
//! (which counts them) would keep half as many jobs.

use std::collections::VecDeque;

/// Empty slots a new seq may leave behind it in its segment.
const MAX_GAP: i64 = 1024;

/// Slots per chunk (32 KiB of job view slots).
const CHUNK: usize = 1024;

struct Segment<T> {
    /// The seq of the first slot.
    base: i64,
    /// Where the first slot is in the first chunk.
    start: usize,
    len: usize,
    chunks: VecDeque<Box<[Option<T>]>>,
}

impl<T> Segment<T> {
    fn new(base: i64) -> Self {
        Segment {
            base,
            start: 0,
            len: 0,
            chunks: VecDeque::new(),
        }
    }

    fn end(&self) -> i64 {
        self.base + self.len as i64
    }

    fn slot(&mut self, i: usize) -> &mut Option<T> {
        let at = self.start + i;
        &mut self.chunks[at / CHUNK][at % CHUNK]
    }

    fn get(&self, i: usize) -> Option<&T> {
        let at = self.start + i;
        self.chunks.get(at / CHUNK)?.get(at % CHUNK)?.as_ref()
    }

    fn push_back(&mut self, value: Option<T>) {
        let at = self.start + self.len;
        if at / CHUNK == self.chunks.len() {
            self.chunks.push_back((0..CHUNK).map(|_| None).collect());
        }
        self.len += 1;
        *self.slot(self.len - 1) = value;
    }

    fn pop_front(&mut self) -> Option<T> {
        let value = self.slot(0).take();
        self.base += 1;
        self.len -= 1;
        self.start += 1;
        if self.start == CHUNK || self.len == 0 {
            self.chunks.pop_front();
            self.start = 0;
        }
        value
    }
}

pub struct SeqRing<T> {
    /// Oldest first; none is empty.
    segments: VecDeque<Segment<T>>,
}

impl<T> Default for SeqRing<T> {
    fn default() -> Self {
        SeqRing {
            segments: VecDeque::new(),
        }
    }
}

impl<T> SeqRing<T> {
    fn find(&self, seq: i64) -> Option<(usize, usize)> {
        let s = self
            .segments
            .iter()
            .rposition(|s| s.base <= seq && seq < s.end())?;
        Some((s, (seq - self.segments[s].base) as usize))
    }

    pub fn get(&self, seq: i64) -> Option<&T> {
        let (s, i) = self.find(seq)?;
        self.segments[s].get(i)
    }

    /// Puts `value` at `seq` and answers what was there; a seq older than
    /// the newest slot that no slot has is not kept (`Err`).
    pub fn insert(&mut self, seq: i64, value: T) -> Result<Option<T>, T> {
        if let Some((s, i)) = self.find(seq) {
            return Ok(self.segments[s].slot(i).replace(value));
        }
        match self.segments.back_mut() {
            Some(last) if seq < last.end() => return Err(value),
            Some(last) if seq - last.end() <= MAX_GAP => {
                while last.end() < seq {
                    last.push_back(None);
                }
                last.push_back(Some(value));
            }
            _ => {
                let mut segment = Segment::new(seq);
                segment.push_back(Some(value));
                self.segments.push_back(segment);
            }
        }
        Ok(None)
    }

    pub fn take(&mut self, seq: i64) -> Option<T> {
        let (s, i) = self.find(seq)?;
        self.segments[s].slot(i).take()
    }

    /// Removes the oldest slot: `Some(None)` if it was empty.
    pub fn pop_front(&mut self) -> Option<Option<T>> {
        let first = self.segments.front_mut()?;
        let value = first.pop_front();
        if first.len == 0 {
            self.segments.pop_front();
        }
        Some(value)
    }

    /// The oldest slot is empty.
    pub fn front_is_empty(&self) -> bool {
        self.segments
            .front()
            .is_some_and(|s| s.len > 0 && s.get(0).is_none())
    }

    /// Slots, empty ones included.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Slots allocated.
    pub fn capacity(&self) -> usize {
        self.segments.iter().map(|s| s.chunks.len() * CHUNK).sum()
    }

    pub fn segments(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_seqs_extend_the_ring_and_old_ones_are_not_kept() {
        let mut ring = SeqRing::default();
        assert_eq!(ring.insert(10, "a"), Ok(None));
        assert_eq!(ring.insert(12, "c"), Ok(None));
        assert_eq!((ring.slots(), ring.segments()), (3, 1));
        assert!(ring.capacity() >= 3);
        assert_eq!(
            (ring.get(10), ring.get(11), ring.get(12)),
            (Some(&"a"), None, Some(&"c"))
        );
        // A slot left empty can be filled; one before the ring cannot.
        assert_eq!(ring.insert(11, "b"), Ok(None));
        assert_eq!(ring.insert(9, "z"), Err("z"));
        assert_eq!(ring.insert(12, "C"), Ok(Some("c")));
        assert_eq!(ring.take(11), Some("b"));
        assert_eq!(ring.take(11), None);
        assert_eq!(ring.take(99), None);
        assert_eq!(ring.pop_front(), Some(Some("a")));
        assert!(ring.front_is_empty());
        assert_eq!(ring.pop_front(), Some(None));
        assert_eq!(ring.pop_front(), Some(Some("C")));
        assert_eq!(
            (ring.pop_front(), ring.slots(), ring.segments()),
            (None, 0, 0)
        );
    }

    #[test]
    fn a_jump_in_seqs_starts_a_segment_and_both_stay_readable() {
        let mut ring = SeqRing::default();
        ring.insert(1, 1).expect("kept");
        ring.insert(2, 2).expect("kept");
        let far = 2 + MAX_GAP + 2;
        ring.insert(far, 3).expect("kept");
        assert_eq!((ring.slots(), ring.segments()), (3, 2));
        assert_eq!(
            (ring.get(2), ring.get(far), ring.get(far - 1)),
            (Some(&2), Some(&3), None)
        );
        // Between the segments is before the newest: not kept.
        assert_eq!(ring.insert(far - 1, 9), Err(9));
        assert_eq!(ring.insert(2, 20), Ok(Some(2)));
        // Within the gap allowance, the newest segment grows.
        ring.insert(far + MAX_GAP + 1, 4).expect("kept");
        assert_eq!(ring.segments(), 2);
        assert_eq!(ring.slots(), 2 + MAX_GAP as usize + 2);
        assert_eq!(ring.pop_front(), Some(Some(1)));
        assert_eq!(ring.pop_front(), Some(Some(20)));
        assert_eq!(ring.segments(), 1, "an emptied segment goes");
        assert_eq!(ring.get(far), Some(&3));
    }

    #[test]
    fn slots_come_in_chunks_and_go_with_them() {
        let mut ring = SeqRing::default();
        let n = 3 * CHUNK as i64 + 5;
        for seq in 0..n {
            ring.insert(seq, seq).expect("kept");
        }
        assert_eq!(ring.capacity(), 4 * CHUNK, "no more than the chunks in use");
        for seq in 0..CHUNK as i64 {
            assert_eq!(ring.pop_front(), Some(Some(seq)));
        }
        assert_eq!(ring.capacity(), 3 * CHUNK, "an emptied chunk goes");
        assert_eq!(ring.get(CHUNK as i64), Some(&(CHUNK as i64)));
        assert_eq!(ring.get(n - 1), Some(&(n - 1)));
        assert_eq!(ring.insert(n - 1, -1), Ok(Some(n - 1)));
        while ring.pop_front().is_some() {}
        assert_eq!((ring.capacity(), ring.segments(), ring.slots()), (0, 0, 0));
    }
}
