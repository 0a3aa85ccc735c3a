//! The attention of one new position over the key/value cache, for a group of query heads
//! that share a key/value head: the kernel of `models::attention::attend_one`.

#[cfg(target_arch = "x86_64")]
mod avx2;

/// The most query heads attended together: their partial contexts are kept in registers.
pub const MAX_HEADS_TOGETHER: usize = 8;

/// Query heads of one row that share a key/value head, and that head's cache.
pub struct Group<'a> {
    /// `heads × dim`.
    pub queries: &'a [f32],
    /// `len × dim`, one position per `dim` values.
    pub keys: &'a [f32],
    /// As many as the keys.
    pub values: &'a [f32],
    /// An additive value per position.
    pub mask: Option<&'a [f32]>,
    pub dim: usize,
    pub scale: f32,
}

impl Group<'_> {
    /// Writes each head's attention context into `context` (`heads × dim`), for up to
    /// [`MAX_HEADS_TOGETHER`] heads.
    ///
    /// # Panics
    /// If the shapes disagree: the queries are not whole heads, or there are more of them than
    /// [`MAX_HEADS_TOGETHER`], the values or the mask are not as long as the keys, or `context`
    /// is not as long as the queries.
    pub fn attend(&self, context: &mut [f32]) {
        let dim = self.dim;
        let heads = self.queries.len() / dim.max(1);
        let len = self.keys.len() / dim.max(1);
        assert!(
            dim > 0
                && (1..=MAX_HEADS_TOGETHER).contains(&heads)
                && self.queries.len() == heads * dim
                && self.keys.len() == len * dim
                && self.values.len() == len * dim
                && self.mask.is_none_or(|m| m.len() == len)
                && context.len() == heads * dim,
            "attention shapes: {} queries, {} keys, {} values, {:?} mask values, {} outputs, \
             head size {dim}",
            self.queries.len(),
            self.keys.len(),
            self.values.len(),
            self.mask.map(<[f32]>::len),
            context.len(),
        );
        match self.queries.len() / self.dim {
            1 => self.attend_heads::<1>(context),
            2 => self.attend_heads::<2>(context),
            3 => self.attend_heads::<3>(context),
            4 => self.attend_heads::<4>(context),
            5 => self.attend_heads::<5>(context),
            6 => self.attend_heads::<6>(context),
            7 => self.attend_heads::<7>(context),
            _ => self.attend_heads::<8>(context),
        }
    }

    fn attend_heads<const H: usize>(&self, context: &mut [f32]) {
        let (dim, len) = (self.dim, self.keys.len() / self.dim);
        if len == 0 {
            context.fill(0.0);
            return;
        }
        if H == 1 {
            // One head (the encoder-decoders, whose caches are short): the plain pass was faster
            // there than the grouped kernel (550 against 500-530 tok/s, opus-mt greedy int8).
            return self.attend_one_head(context);
        }
        #[cfg(target_arch = "x86_64")]
        if dim % 8 == 0 && super::isa() >= super::Isa::Avx2 {
            // SAFETY: the instructions were checked for; `attend` checked the shapes.
            return unsafe { avx2::attend::<H>(self, context) };
        }
        self.attend_heads_generic::<H>(context)
    }

    fn attend_one_head(&self, context: &mut [f32]) {
        let dim = self.dim;
        let mut weights: Vec<f32> = self
            .keys
            .chunks_exact(dim)
            .enumerate()
            .map(|(p, key)| dot(self.queries, key) * self.scale + self.mask.map_or(0.0, |m| m[p]))
            .collect();
        let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total = super::exp::exp_in_place(&mut weights, max);
        context.fill(0.0);
        for (w, value) in weights.iter().zip(self.values.chunks_exact(dim)) {
            let w = w / total;
            for (c, v) in context.iter_mut().zip(value) {
                *c += w * v;
            }
        }
    }

    fn attend_heads_generic<const H: usize>(&self, context: &mut [f32]) {
        let (dim, len) = (self.dim, self.keys.len() / self.dim);
        // weights[h * len + p]: head h's score, then its weight, for position p.
        let mut weights = vec![0f32; H * len];
        for (p, key) in self.keys.chunks_exact(dim).enumerate() {
            let bias = self.mask.map_or(0.0, |m| m[p]);
            for (h, query) in self.queries.chunks_exact(dim).enumerate() {
                weights[h * len + p] = dot(query, key) * self.scale + bias;
            }
        }
        softmax_rows(&mut weights, len);
        let by_position = by_position::<H>(&weights, len);
        context.fill(0.0);
        // Eight dimensions at a time for every head, over a block of positions whose values
        // stay in L1 across the passes (the whole cache is larger than L2 at ~1000 positions).
        let lanes = dim / 8 * 8;
        for first in (0..len).step_by(VALUE_BLOCK) {
            let end = (first + VALUE_BLOCK).min(len);
            let values = &self.values[first * dim..end * dim];
            let weights = &by_position[first * H..end * H];
            for d in (0..lanes).step_by(8) {
                let mut sums = [[0f32; 8]; H];
                for (h, sum) in sums.iter_mut().enumerate() {
                    sum.copy_from_slice(&context[h * dim + d..h * dim + d + 8]);
                }
                for (value, w) in values.chunks_exact(dim).zip(weights.chunks_exact(H)) {
                    let value = &value[d..d + 8];
                    for (sum, &w) in sums.iter_mut().zip(w) {
                        for (s, v) in sum.iter_mut().zip(value) {
                            *s += w * v;
                        }
                    }
                }
                for (h, sum) in sums.iter().enumerate() {
                    context[h * dim + d..h * dim + d + 8].copy_from_slice(sum);
                }
            }
            for (value, w) in values.chunks_exact(dim).zip(weights.chunks_exact(H)) {
                for d in lanes..dim {
                    for (h, &w) in w.iter().enumerate() {
                        context[h * dim + d] += w * value[d];
                    }
                }
            }
        }
    }
}

/// Replaces each head's scores (`weights[h * len..][..len]`) by their softmax.
fn softmax_rows(weights: &mut [f32], len: usize) {
    for scores in weights.chunks_exact_mut(len) {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inverse = 1.0 / super::exp::exp_in_place(scores, max);
        scores.iter_mut().for_each(|w| *w *= inverse);
    }
}

/// The heads' weights (`weights[h * len + p]`) regrouped by position: `[p * H + h]`.
fn by_position<const H: usize>(weights: &[f32], len: usize) -> Vec<f32> {
    let mut by_position = vec![0f32; H * len];
    for (h, scores) in weights.chunks_exact(len).enumerate() {
        for (p, &w) in scores.iter().enumerate() {
            by_position[p * H + h] = w;
        }
    }
    by_position
}

/// Positions per pass over the values (64 positions of 64 dimensions: 16 KB).
const VALUE_BLOCK: usize = 64;

/// A dot product in eight independent lanes, which the compiler turns into vector
/// multiply-adds (one running sum would have to add in order).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `softmax(q · k · scale + mask) · v` for each head, in f64.
    fn reference(group: &Group<'_>) -> Vec<f32> {
        let dim = group.dim;
        let mut out = Vec::new();
        for query in group.queries.chunks_exact(dim) {
            let scores: Vec<f64> = group
                .keys
                .chunks_exact(dim)
                .enumerate()
                .map(|(p, key)| {
                    let dot: f64 = query
                        .iter()
                        .zip(key)
                        .map(|(&q, &k)| q as f64 * k as f64)
                        .sum();
                    dot * group.scale as f64 + group.mask.map_or(0.0, |m| m[p] as f64)
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            out.extend((0..dim).map(|d| {
                let sum: f64 = weights
                    .iter()
                    .zip(group.values.chunks_exact(dim))
                    .map(|(w, v)| w * v[d] as f64)
                    .sum();
                (sum / total) as f32
            }));
        }
        out
    }

    fn generic(group: &Group<'_>, context: &mut [f32]) {
        match group.queries.len() / group.dim {
            1 => group.attend_heads_generic::<1>(context),
            2 => group.attend_heads_generic::<2>(context),
            3 => group.attend_heads_generic::<3>(context),
            4 => group.attend_heads_generic::<4>(context),
            5 => group.attend_heads_generic::<5>(context),
            6 => group.attend_heads_generic::<6>(context),
            7 => group.attend_heads_generic::<7>(context),
            _ => group.attend_heads_generic::<8>(context),
        }
    }

    /// The dispatched kernel (AVX2 where this CPU has it) and the portable one, against the
    /// definition, for every head count and positions and head sizes that are not multiples of
    /// the vector width.
    #[test]
    fn matches_the_definition_on_ragged_shapes() {
        let mut seed = 11u32;
        let mut rand = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        for heads in 1..=MAX_HEADS_TOGETHER {
            for (dim, len) in [(8, 1), (16, 13), (64, 70), (12, 9), (24, 133)] {
                let queries: Vec<f32> = (0..heads * dim).map(|_| rand()).collect();
                let keys: Vec<f32> = (0..len * dim).map(|_| rand()).collect();
                let values: Vec<f32> = (0..len * dim).map(|_| rand()).collect();
                let mask: Vec<f32> = (0..len)
                    .map(|p| {
                        if p % 5 == 3 {
                            f32::NEG_INFINITY
                        } else {
                            rand()
                        }
                    })
                    .collect();
                for mask in [None, Some(&mask[..])] {
                    let group = Group {
                        queries: &queries,
                        keys: &keys,
                        values: &values,
                        mask,
                        dim,
                        scale: 1.0 / (dim as f32).sqrt(),
                    };
                    let want = reference(&group);
                    let (mut got, mut portable) =
                        (vec![0f32; heads * dim], vec![0f32; heads * dim]);
                    group.attend(&mut got);
                    generic(&group, &mut portable);
                    for ((g, p), w) in got.iter().zip(&portable).zip(&want) {
                        let shape = format!("{heads} heads of {dim}, {len} positions");
                        assert!((g - w).abs() < 1e-5, "{shape}: {g} vs {w}");
                        assert!((p - w).abs() < 1e-5, "{shape}, portable: {p} vs {w}");
                    }
                }
            }
        }
    }
}
