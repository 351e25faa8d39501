//! A mergeable latency sketch (DDSketch's logarithmic mapping) with a compact binary encoding.
//!
//! Every per-minute rollup row carries one sketch, and dashboards merge thousands of them, so the
//! two things that matter are a guaranteed relative error and a small serialised size. The crates
//! we looked at keep a dense bin array whose serde form is kilobytes per minute; this keeps sparse
//! bins and writes them as varint deltas (typically a few bytes per distinct latency bucket).

use std::collections::BTreeMap;

/// Relative accuracy of every quantile the sketch returns (0.5 %), which keeps percentiles
/// comfortably within the product's 1 % bar after merging.
pub const RELATIVE_ACCURACY: f64 = 0.005;

const ENCODING_VERSION: u8 = 1;

/// Values at or below this are counted as zero (durations are whole milliseconds, so 0 ms is
/// common for cached responses and must not go through `ln`).
const MIN_POSITIVE: f64 = 1e-3;

#[derive(Debug, Clone, PartialEq)]
pub struct LatencySketch {
    bins: BTreeMap<i32, u64>,
    zero_count: u64,
    count: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("latency sketch encoding is corrupt: {0}")]
pub struct SketchDecodeError(&'static str);

impl Default for LatencySketch {
    fn default() -> Self {
        Self::new()
    }
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl LatencySketch {
    pub fn new() -> Self {
        Self {
            bins: BTreeMap::new(),
            zero_count: 0,
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one observation. Negative and non-finite values are treated as zero: a latency
    /// can't be negative, and a sketch must never be poisoned by one bad row.
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        if !value.is_finite() || value <= MIN_POSITIVE {
            self.zero_count += 1;
            return;
        }
        let key = (value.ln() / gamma().ln()).ceil() as i32;
        *self.bins.entry(key).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &LatencySketch) {
        self.count += other.count;
        self.zero_count += other.zero_count;
        for (key, n) in &other.bins {
            *self.bins.entry(*key).or_insert(0) += n;
        }
    }

    /// The value at quantile `q` (0..=1), or `None` for an empty sketch. Uses the lower rank
    /// (`floor(q * (n - 1))`), the same convention as the exact reference in tests.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0);
        }
        let mut seen = self.zero_count;
        let g = gamma();
        for (key, n) in &self.bins {
            seen += n;
            if seen > rank {
                // The midpoint (in the relative sense) of bucket (g^(k-1), g^k].
                return Some(2.0 * g.powi(*key) / (1.0 + g));
            }
        }
        None
    }

    /// Serialises as: version, count, zero count, bin count, then (key delta, count) pairs,
    /// all as LEB128 varints (keys zig-zag encoded).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.bins.len() * 3);
        out.push(ENCODING_VERSION);
        put_varint(&mut out, self.count);
        put_varint(&mut out, self.zero_count);
        put_varint(&mut out, self.bins.len() as u64);
        let mut previous = 0i64;
        for (key, n) in &self.bins {
            let key = i64::from(*key);
            put_varint(&mut out, zigzag(key - previous));
            put_varint(&mut out, *n);
            previous = key;
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SketchDecodeError> {
        let mut input = bytes;
        let version = *input.first().ok_or(SketchDecodeError("empty"))?;
        if version != ENCODING_VERSION {
            return Err(SketchDecodeError("unknown version"));
        }
        input = &input[1..];
        let count = take_varint(&mut input)?;
        let zero_count = take_varint(&mut input)?;
        let bin_count = take_varint(&mut input)?;
        let mut bins = BTreeMap::new();
        let mut key = 0i64;
        let mut total = zero_count;
        for _ in 0..bin_count {
            key += unzigzag(take_varint(&mut input)?);
            let n = take_varint(&mut input)?;
            let key = i32::try_from(key).map_err(|_| SketchDecodeError("bin key out of range"))?;
            bins.insert(key, n);
            total = total.saturating_add(n);
        }
        if !input.is_empty() {
            return Err(SketchDecodeError("trailing bytes"));
        }
        if total != count {
            return Err(SketchDecodeError("bin counts do not add up"));
        }
        Ok(Self {
            bins,
            zero_count,
            count,
        })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, SketchDecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input
            .split_first()
            .ok_or(SketchDecodeError("truncated varint"))?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(SketchDecodeError("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn merged_sketches_stay_within_one_percent() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut all = Vec::new();
        let mut merged = LatencySketch::new();
        // Many small per-minute sketches, like rollups, merged into one.
        for _ in 0..2_000 {
            let mut minute = LatencySketch::new();
            for _ in 0..rng.gen_range(0..40) {
                let ms = (rng.gen::<f64>() * 8.0).exp().round();
                minute.add(ms);
                all.push(ms);
            }
            let round_tripped = LatencySketch::decode(&minute.encode()).expect("decodes");
            merged.merge(&round_tripped);
        }
        all.sort_by(f64::total_cmp);
        assert_eq!(merged.count(), all.len() as u64);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let want = exact(&all, q);
            let got = merged.quantile(q).expect("non-empty");
            let err = if want == 0.0 {
                got
            } else {
                (got - want).abs() / want
            };
            assert!(err <= 0.01, "q={q}: got {got}, exact {want}, error {err}");
        }
    }

    #[test]
    fn zero_and_bad_values_count_as_zero() {
        let mut s = LatencySketch::new();
        s.add(0.0);
        s.add(-5.0);
        s.add(f64::NAN);
        s.add(100.0);
        assert_eq!(s.count(), 4);
        assert_eq!(s.quantile(0.5), Some(0.0));
        let top = s.quantile(1.0).expect("non-empty");
        assert!((top - 100.0).abs() / 100.0 <= RELATIVE_ACCURACY);
    }

    #[test]
    fn empty_sketch_has_no_quantiles_and_round_trips() {
        let s = LatencySketch::new();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(LatencySketch::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn corrupt_encodings_are_rejected_not_trusted() {
        let mut s = LatencySketch::new();
        s.add(12.0);
        s.add(900.0);
        let bytes = s.encode();
        assert!(LatencySketch::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(LatencySketch::decode(&extra).is_err());
        assert!(LatencySketch::decode(&[9]).is_err());
        assert!(LatencySketch::decode(&[]).is_err());
    }
}
