//! Uuid-shaped ids and a small seeded random generator (no `uuid` or `rand` dependency).
//!
//! Seed objects get ids derived from their kind and name, so they are the same in every
//! run; servers and tokens take theirs from [`Rng`], seeded by the options. Pure.

/// FNV-1a over `bytes`, starting from `basis`.
fn fnv1a(basis: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Formats 128 bits as a version-4 style uuid (`8-4-4-4-12` lowercase hex).
fn uuid_from(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A uuid-like id that depends only on `kind` and `name`.
pub fn stable_id(kind: &str, name: &str) -> String {
    let key = format!("{kind}\0{name}");
    let hi = fnv1a(0xcbf2_9ce4_8422_2325, key.as_bytes());
    let lo = fnv1a(0x8422_2325_cbf2_9ce4, key.as_bytes());
    uuid_from(Rng::mix(hi), Rng::mix(lo))
}

/// SplitMix64: tiny, seedable, good enough for ids and jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        Rng::mix(self.0)
    }

    /// A uniformly drawn value in `0..=max`.
    pub fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }

    /// A random uuid-like id.
    pub fn uuid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        uuid_from(hi, lo)
    }

    /// An opaque token value (Fernet tokens start with `gAAAAA`).
    pub fn token(&mut self) -> String {
        format!(
            "gAAAAA{:016x}{:016x}{:016x}",
            self.next_u64(),
            self.next_u64(),
            self.next_u64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_uuid(s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    }

    #[test]
    fn stable_ids_depend_on_kind_and_name_only() {
        assert_eq!(
            stable_id("image", "Debian 12"),
            stable_id("image", "Debian 12")
        );
        assert_ne!(
            stable_id("image", "Debian 12"),
            stable_id("network", "Debian 12")
        );
        assert!(is_uuid(&stable_id("flavor", "m1.small")));
    }

    #[test]
    fn the_same_seed_gives_the_same_ids_and_a_different_seed_does_not() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let first = a.uuid();
        assert!(is_uuid(&first));
        assert_eq!(first, b.uuid());
        assert_ne!(first, c.uuid());
        assert_ne!(a.uuid(), first);
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut r = Rng::new(3);
        assert!((0..1000).all(|_| r.below_or_equal(5) <= 5));
        assert_eq!(r.below_or_equal(0), 0);
        let _ = r.below_or_equal(u64::MAX);
    }
}
