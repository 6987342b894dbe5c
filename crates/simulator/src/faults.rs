//! Fault injection: decides, per API call, whether to slow down, throttle or fail it.
//!
//! Draws come from a dedicated generator so that, with a seed, the sequence of faults depends
//! only on the sequence of API calls (not on how many ids were generated).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::control::Faults;

/// Mixed into the seed so the fault generator differs from the id generator.
const FAULT_SEED_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fault chosen for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// 429 `Throttling.RateQuota` with `Retry-After`.
    Throttle { retry_after_seconds: u64 },
    /// 500 `InternalError`.
    Error,
}

pub fn id_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

pub fn fault_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed ^ FAULT_SEED_SALT),
        None => StdRng::from_os_rng(),
    }
}

/// True with probability `rate`. No draw is made when the fault is off.
fn hit(rate: f64, rng: &mut impl Rng) -> bool {
    rate > 0.0 && rng.random::<f64>() < rate
}

/// The fault, if any, that replaces the answer of an API call.
pub fn inject(faults: &Faults, rng: &mut impl Rng) -> Option<Injected> {
    if hit(faults.throttle_rate, rng) {
        return Some(Injected::Throttle {
            retry_after_seconds: faults.retry_after_seconds,
        });
    }
    if hit(faults.error_rate, rng) {
        return Some(Injected::Error);
    }
    None
}

/// Whether a successful create loses its answer.
pub fn lose_create_answer(faults: &Faults, rng: &mut impl Rng) -> bool {
    hit(faults.lost_create_rate, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_by_default() {
        let mut rng = fault_rng(Some(1));
        let faults = Faults::default();
        assert!((0..1000).all(|_| inject(&faults, &mut rng).is_none()));
        assert!((0..1000).all(|_| !lose_create_answer(&faults, &mut rng)));
    }

    #[test]
    fn certain_faults() {
        let mut rng = fault_rng(None);
        let throttle = Faults {
            throttle_rate: 1.0,
            retry_after_seconds: 7,
            error_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(
            inject(&throttle, &mut rng),
            Some(Injected::Throttle {
                retry_after_seconds: 7
            })
        );
        let error = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(inject(&error, &mut rng), Some(Injected::Error));
        let lost = Faults {
            lost_create_rate: 1.0,
            ..Faults::default()
        };
        assert!(lose_create_answer(&lost, &mut rng));
    }

    #[test]
    fn seeded_sequences_repeat_and_rates_hold() {
        let faults = Faults {
            error_rate: 0.3,
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = fault_rng(Some(seed));
            (0..2000)
                .map(|_| inject(&faults, &mut rng).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let hits = run(42).iter().filter(|h| **h).count();
        assert!((450..750).contains(&hits), "{hits}");
    }

    #[test]
    fn sanitize_and_validate() {
        let bad = Faults {
            throttle_rate: f64::NAN,
            error_rate: 2.0,
            lost_create_rate: -1.0,
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
        let clean = bad.sanitized();
        assert_eq!(
            (
                clean.throttle_rate,
                clean.error_rate,
                clean.lost_create_rate
            ),
            (0.0, 1.0, 0.0)
        );
        assert!(clean.validate().is_ok());
    }
}
