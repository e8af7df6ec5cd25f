//! Time as a dependency: the system clock in production, a fixed clock in tests, so that locks,
//! expiries and freeze windows are tested without sleeping.

use crate::domain::Millis;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        jiff::Timestamp::now().as_millisecond()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(millis: Millis) -> FixedClock {
        FixedClock(AtomicI64::new(millis))
    }

    pub fn advance(&self, millis: Millis) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}
