//! A fast, seeded, non-cryptographic generator for choosing what to ask: the
//! load must not spend its CPU on a CSPRNG, and a seed makes a run's
//! sequence of choices repeatable.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and three mixes per draw.
pub struct FastRng(u64);

impl FastRng {
    /// A generator seeded with `seed`; different seeds give unrelated streams.
    pub fn new(seed: u64) -> Self {
        FastRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; 0 when `bound` is 0.
    pub fn below(&mut self, bound: usize) -> usize {
        // Multiply-shift (Lemire): no division, bias below 2^-32 for any
        // bound a benchmark uses.
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_below_the_bound_and_cover_it() {
        let mut rng = FastRng::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let value = rng.below(10);
            assert!(value < 10);
            seen[value] = true;
        }
        assert!(seen.iter().all(|&hit| hit));
        assert_eq!(rng.below(0), 0);
    }
}
