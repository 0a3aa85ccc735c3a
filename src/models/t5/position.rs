//! T5's relative position buckets: exact for small distances, logarithmic up to
//! `relative_attention_max_distance`, one shared bucket beyond.

use candle_core::Tensor;

use super::T5Config;

/// The bucket of every distance, computed once at load time: a distance at or beyond
/// `max_distance` always lands in the last bucket, so the table is short.
#[derive(Debug, Clone)]
pub(super) struct RelativeBuckets {
    /// Bucket by distance `|key - query|` (bidirectional) or `query - key` (causal).
    by_distance: Vec<u32>,
    /// Added for keys after the query; only the encoder tells the two directions apart.
    after_offset: Option<u32>,
}

impl RelativeBuckets {
    pub(super) fn new(cfg: &T5Config, bidirectional: bool) -> Self {
        let mut num_buckets = cfg.relative_attention_num_buckets as u32;
        if bidirectional {
            num_buckets /= 2;
        }
        let max_exact = num_buckets / 2;
        let max_distance = cfg.relative_attention_max_distance as u32;
        // The logarithm is taken in f32 and the divisor is a double rounded to f32, as PyTorch
        // computes `log(n.float() / max_exact) / math.log(max_distance / max_exact)`: a bucket
        // boundary falls on an exact integer (64 in the encoder), where rounding decides.
        let log_range = (max_distance as f64 / max_exact as f64).ln() as f32;
        let by_distance = (0..=max_distance.max(max_exact))
            .map(|n| {
                if n < max_exact {
                    return n;
                }
                let log = (n as f32 / max_exact as f32).ln() / log_range
                    * (num_buckets - max_exact) as f32;
                (max_exact + log as u32).min(num_buckets - 1)
            })
            .collect();
        Self {
            by_distance,
            after_offset: bidirectional.then_some(num_buckets),
        }
    }

    pub(super) fn bucket(&self, query: usize, key: usize) -> u32 {
        let (distance, offset) = match self.after_offset {
            Some(offset) if key > query => (key - query, offset),
            Some(_) => (query - key, 0),
            // Causal: keys after the query count as distance 0 (they are masked anyway).
            None => (query.saturating_sub(key), 0),
        };
        offset + self.by_distance[distance.min(self.by_distance.len() - 1)]
    }

    /// The bias `[1, heads, queries, keys]` for queries `past..past + queries` against keys
    /// `0..keys`, looked up in a `[num_buckets, heads]` table.
    pub(super) fn bias(
        &self,
        table: &Tensor,
        queries: usize,
        keys: usize,
        past: usize,
    ) -> candle_core::Result<Tensor> {
        let buckets: Vec<u32> = (past..past + queries)
            .flat_map(|q| (0..keys).map(move |k| self.bucket(q, k)))
            .collect();
        let index = Tensor::from_vec(buckets, queries * keys, table.device())?;
        let heads = table.dim(1)?;
        table
            .index_select(&index, 0)?
            .reshape((queries, keys, heads))?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where transformers' `_relative_position_bucket` (PyTorch 2.15) changes bucket, as
    /// `(relative position, bucket from there on)` for relative positions -600..=600.
    fn check(bidirectional: bool, num_buckets: usize, max_distance: usize, changes: &[(i64, u32)]) {
        let cfg: T5Config = serde_json::from_str(&format!(
            r#"{{"relative_attention_num_buckets": {num_buckets},
                "relative_attention_max_distance": {max_distance}}}"#
        ))
        .unwrap();
        let buckets = RelativeBuckets::new(&cfg, bidirectional);
        let query = 600usize;
        for rel in -600i64..=600 {
            let expected = changes
                .iter()
                .rev()
                .find(|(from, _)| *from <= rel)
                .unwrap()
                .1;
            let key = (query as i64 + rel) as usize;
            assert_eq!(
                buckets.bucket(query, key),
                expected,
                "relative position {rel}"
            );
        }
    }

    #[test]
    fn buckets_match_transformers() {
        check(
            true,
            32,
            128,
            &[
                (-600, 15),
                (-90, 14),
                (-63, 13),
                (-45, 12),
                (-31, 11),
                (-22, 10),
                (-15, 9),
                (-11, 8),
                (-7, 7),
                (-6, 6),
                (-5, 5),
                (-4, 4),
                (-3, 3),
                (-2, 2),
                (-1, 1),
                (0, 0),
                (1, 17),
                (2, 18),
                (3, 19),
                (4, 20),
                (5, 21),
                (6, 22),
                (7, 23),
                (8, 24),
                (12, 25),
                (16, 26),
                (23, 27),
                (32, 28),
                (46, 29),
                (64, 30),
                (91, 31),
            ],
        );
        check(
            false,
            32,
            128,
            &[
                (-600, 31),
                (-112, 30),
                (-98, 29),
                (-86, 28),
                (-76, 27),
                (-66, 26),
                (-58, 25),
                (-51, 24),
                (-45, 23),
                (-39, 22),
                (-34, 21),
                (-30, 20),
                (-26, 19),
                (-23, 18),
                (-20, 17),
                (-18, 16),
                (-15, 15),
                (-14, 14),
                (-13, 13),
                (-12, 12),
                (-11, 11),
                (-10, 10),
                (-9, 9),
                (-8, 8),
                (-7, 7),
                (-6, 6),
                (-5, 5),
                (-4, 4),
                (-3, 3),
                (-2, 2),
                (-1, 1),
                (0, 0),
            ],
        );
        check(
            true,
            16,
            32,
            &[
                (-600, 7),
                (-19, 6),
                (-11, 5),
                (-6, 4),
                (-3, 3),
                (-2, 2),
                (-1, 1),
                (0, 0),
                (1, 9),
                (2, 10),
                (3, 11),
                (4, 12),
                (7, 13),
                (12, 14),
                (20, 15),
            ],
        );
    }
}
