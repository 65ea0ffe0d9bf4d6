//! The SDK's own operational warnings (a price missing, the broker down, a second `init` ignored, …): one place
//! that makes sure they reach a person.
//!
//! Each report is a `tracing` event with target `observer` and a `kind` field. When no `tracing` subscriber is
//! interested in it (none installed, one that filters it out, or the export-only subscriber of
//! `configure_tracing` without its console layer), the report is written to stderr as well, as
//! `observer: warning: …`, at most once per kind every [`REPEAT_AFTER`] (the next line says how many were
//! left out in between). Messages carry their details inline, never secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ::tracing::Level;

/// How long stderr stays quiet about a kind after writing one of it.
pub(crate) const REPEAT_AFTER: Duration = Duration::from_secs(60);

/// Reports `message` at `level` with the stable `kind` (e.g. `"init-ignored"`), see the module docs.
pub(crate) fn emit(level: Level, kind: &'static str, message: fmt::Arguments<'_>) {
    // The event itself is always emitted (a subscriber may record it even if `enabled!` was asked first);
    // `enabled!` tells whether anybody listens at this level for the `observer` target.
    let listened = if level == Level::ERROR {
        ::tracing::error!(target: "observer", kind, "{message}");
        ::tracing::enabled!(target: "observer", Level::ERROR)
    } else if level == Level::WARN {
        ::tracing::warn!(target: "observer", kind, "{message}");
        ::tracing::enabled!(target: "observer", Level::WARN)
    } else {
        ::tracing::info!(target: "observer", kind, "{message}");
        ::tracing::enabled!(target: "observer", Level::INFO)
    };
    // The subscriber `configure_tracing` installs without its console layer only exports spans: an event outside
    // a span reaches nobody there.
    let listened = listened && !SILENT_GLOBAL_SUBSCRIBER.load(std::sync::atomic::Ordering::Relaxed);
    if !listened {
        to_stderr(level, kind, message);
    }
}

/// Set when the global subscriber is one the SDK installed that prints no events (OTLP export only).
static SILENT_GLOBAL_SUBSCRIBER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says whether the global subscriber the SDK installed prints nothing (then reports also go to stderr).
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) fn set_global_subscriber_prints_nothing(silent: bool) {
    SILENT_GLOBAL_SUBSCRIBER.store(silent, std::sync::atomic::Ordering::Relaxed);
}

/// A warning that goes to stderr whatever subscriber is installed (and to `tracing` as well): for mistakes in
/// the program that lose or misplace audit events, such as a guard dropped right after `init`.
pub(crate) fn report_loud(kind: &'static str, message: fmt::Arguments<'_>) {
    ::tracing::warn!(target: "observer", kind, "{message}");
    let _ = writeln!(std::io::stderr().lock(), "observer: warning: {message}");
}

#[derive(Debug)]
struct Printed {
    at: Instant,
    suppressed: u64,
}

static PRINTED: Mutex<BTreeMap<&'static str, Printed>> = Mutex::new(BTreeMap::new());

fn to_stderr(level: Level, kind: &'static str, message: fmt::Arguments<'_>) {
    let mut printed = PRINTED.lock().unwrap_or_else(PoisonError::into_inner);
    let first_ever = printed.is_empty();
    let now = Instant::now();
    let suppressed = match printed.get_mut(kind) {
        Some(p) if now.duration_since(p.at) < REPEAT_AFTER => {
            p.suppressed += 1;
            return;
        }
        Some(p) => std::mem::replace(p, Printed { at: now, suppressed: 0 }).suppressed,
        None => {
            printed.insert(kind, Printed { at: now, suppressed: 0 });
            0
        }
    };
    drop(printed);
    let label = match level {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        _ => "",
    };
    let mut line = format!("observer: {label}{message}");
    if suppressed > 0 {
        line.push_str(&format!(" ({suppressed} more like this in the last minute not shown)"));
    }
    if first_ever {
        line.push_str(
            "\nobserver: (the SDK's warnings go to stderr because no `tracing` subscriber listens to target \
             `observer`; install one to receive them as events)",
        );
    }
    // One write, so that lines of concurrent reports do not interleave; a closed stderr is ignored.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `report!(WARN, "kind", "format {args}")`: [`emit`] with a format string.
macro_rules! report {
    ($level:ident, $kind:expr, $($fmt:tt)+) => {
        $crate::diag::emit(::tracing::Level::$level, $kind, ::std::format_args!($($fmt)+))
    };
}
pub(crate) use report;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_printed_once_per_window() {
        // Only the bookkeeping: the first report of a kind is printed, the next ones in the window are counted.
        to_stderr(Level::WARN, "test-kind", format_args!("first"));
        to_stderr(Level::WARN, "test-kind", format_args!("second"));
        to_stderr(Level::WARN, "test-kind", format_args!("third"));
        let printed = PRINTED.lock().unwrap();
        assert_eq!(printed.get("test-kind").map(|p| p.suppressed), Some(2));
    }
}
