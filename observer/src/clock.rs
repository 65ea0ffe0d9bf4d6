//! [`Stopwatch`]: the clock of the durations the SDK measures on the caller's thread for every step.
//!
//! A step reads the clock twice; on virtual machines `std::time::Instant::now()` (the kernel's `vDSO`) costs about
//! 30 ns a reading, as much as a third of a step's whole cost. `quanta` reads the CPU's time-stamp counter
//! instead (about 10 ns) where the CPU has an invariant one, scaled to nanoseconds by a calibration against the
//! monotonic clock, and falls back to the monotonic clock elsewhere. The calibration takes 10–200 ms once per
//! process, so it runs on a thread of its own; stopwatches started before it is done read `std::time::Instant`
//! (a stopwatch always reads the same clock at both ends).

use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

static TSC: OnceLock<quanta::Clock> = OnceLock::new();
static CALIBRATION: Once = Once::new();

/// The calibrated clock, once it is ready; the first call starts its calibration in the background.
fn calibrated() -> Option<&'static quanta::Clock> {
    if let Some(clock) = TSC.get() {
        return Some(clock);
    }
    CALIBRATION.call_once(|| {
        // Without a thread, stopwatches stay on the monotonic clock.
        let _ = std::thread::Builder::new().name("observer-clock".into()).spawn(|| {
            let _ = TSC.set(quanta::Clock::new());
        });
    });
    TSC.get()
}

/// A started stopwatch: monotonic, never negative.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stopwatch {
    Tsc(quanta::Instant),
    Monotonic(Instant),
}

impl Stopwatch {
    /// Starts now.
    pub(crate) fn start() -> Self {
        match calibrated() {
            Some(clock) => Self::Tsc(clock.now()),
            None => Self::Monotonic(Instant::now()),
        }
    }

    /// The time since [`start`](Self::start).
    pub(crate) fn elapsed(&self) -> Duration {
        match (self, TSC.get()) {
            (Self::Tsc(start), Some(clock)) => clock.now().saturating_duration_since(*start),
            (Self::Monotonic(start), _) => start.elapsed(),
            // Not reachable: a `Tsc` stopwatch was started with the calibrated clock, which stays set.
            (Self::Tsc(_), None) => Duration::ZERO,
        }
    }

    /// The time since [`start`](Self::start), in milliseconds.
    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.elapsed().as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both clocks measure the same interval alike, and the calibrated one is used once ready.
    #[test]
    fn stopwatches_measure_real_time_on_either_clock() {
        let first = Stopwatch::start();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TSC.get().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(TSC.get().is_some(), "the calibration finished within 5 s");
        let tsc = Stopwatch::start();
        assert!(matches!(tsc, Stopwatch::Tsc(_)));
        let monotonic = Stopwatch::Monotonic(Instant::now());
        let reference = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let (a, b, r) = (tsc.elapsed(), monotonic.elapsed(), reference.elapsed());
        assert!(a >= Duration::from_millis(50) && b >= Duration::from_millis(50), "{a:?} {b:?}");
        // Same interval, read a few hundred nanoseconds apart: within 1 ms (the calibration is far better).
        let diff = a.abs_diff(r);
        assert!(diff < Duration::from_millis(1), "tsc {a:?} vs monotonic {r:?}");
        assert!(first.elapsed() >= a);
    }
}
