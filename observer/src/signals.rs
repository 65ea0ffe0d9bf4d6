//! Draining the audit pipeline on SIGTERM / SIGINT (Unix): [`shutdown_on_signals`] for plain programs,
//! [`shutdown_signal`] for async servers (axum's `with_graceful_shutdown`).
//!
//! One listener thread (the `signal-hook` crate) is started by whichever is called first. A second SIGTERM or
//! SIGINT while draining ends the process at once, as the signal would, saying so on stderr.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Default)]
struct Listener {
    /// The first signal received (0: none yet).
    received: AtomicI32,
    /// Drain and end the process on the first signal ([`shutdown_on_signals`]).
    drain_and_exit: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

/// The listener, or why it could not be set up: what failed, and the I/O error's kind and message.
static LISTENER: OnceLock<Result<Listener, (&'static str, std::io::ErrorKind, String)>> = OnceLock::new();

fn listener() -> Result<&'static Listener, crate::ExporterError> {
    LISTENER
        .get_or_init(|| {
            let mut signals =
                Signals::new([SIGTERM, SIGINT]).map_err(|e| ("signal handlers", e.kind(), e.to_string()))?;
            std::thread::Builder::new()
                .name("observer-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        on_signal(signal);
                    }
                })
                .map_err(|e| ("signal thread", e.kind(), e.to_string()))?;
            Ok(Listener::default())
        })
        .as_ref()
        // The first failure is kept (an `io::Error` cannot be cloned): its kind and message.
        .map_err(|(what, kind, message)| crate::ExporterError::Io {
            what: (*what).into(),
            source: std::io::Error::new(*kind, message.clone()),
        })
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "signal",
    }
}

fn on_signal(signal: i32) {
    // The thread only runs once the listener was stored.
    let Some(Ok(l)) = LISTENER.get() else { return };
    if l.received.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire).is_err() {
        eprintln!(
            "observer: second {}: exiting now without waiting for the audit pipeline; events still queued are lost",
            name(signal)
        );
        terminate(signal);
    }
    for waker in l.wakers.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
        waker.wake();
    }
    if l.drain_and_exit.load(Ordering::Acquire) {
        // On its own thread, so that a second signal is still heard while draining.
        let drain = move || {
            crate::diag::report!(
                INFO,
                "signal",
                "{} received: draining the audit pipeline, then exiting",
                name(signal)
            );
            if let Err(e) = crate::shutdown() {
                crate::diag::report!(
                    ERROR,
                    "shutdown-incomplete",
                    "shutdown on {} did not complete: {e}",
                    name(signal)
                );
            }
            terminate(signal);
        };
        if std::thread::Builder::new().name("observer-drain".into()).spawn(drain).is_err() {
            eprintln!("observer: could not start the drain thread; exiting on {} without draining", name(signal));
            terminate(signal);
        }
    }
}

/// Ends the process as `signal` would by default (so the parent sees "killed by SIGTERM"), else with the
/// conventional exit code 128 + signal.
fn terminate(signal: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// For plain (non-async) programs: on the first SIGTERM or SIGINT, drains the audit pipeline like dropping the
/// [`ObserverGuard`](crate::ObserverGuard) ([`observer::shutdown`](crate::shutdown)), then ends the process as
/// the signal would (exit status "killed by SIGTERM", or 128 + signal). Call it once, right after
/// [`init`](crate::init):
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = observer::init(observer::ObserverConfig::default())?;
///     observer::shutdown_on_signals()?;
///     // ... the application; `kill -TERM` or Ctrl-C no longer loses queued events ...
///     Ok(())
/// }
/// ```
///
/// The program's own code does not run after the signal; a program that must clean up itself should wait for
/// [`shutdown_signal`] instead and return from `main`. A second signal while draining exits at once.
///
/// # Errors
/// When the handlers cannot be registered (the message says why); the default signal behaviour then stays.
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub fn shutdown_on_signals() -> Result<(), crate::ExporterError> {
    let l = listener()?;
    l.drain_and_exit.store(true, Ordering::Release);
    // A signal that arrived before the switch was set: drain now.
    let received = l.received.load(Ordering::Acquire);
    if received != 0 {
        l.received.store(0, Ordering::Release);
        on_signal(received);
    }
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT (from the call on): for async servers, e.g. axum's
/// `serve(..).with_graceful_shutdown(observer::shutdown_signal())`. The server then stops, `main` returns and
/// the [`ObserverGuard`](crate::ObserverGuard) drains the pipeline. Any executor; no Tokio feature needed.
///
/// ```ignore
/// let _guard = observer::init(ObserverConfig::default())?;
/// axum::serve(listener, app).with_graceful_shutdown(observer::shutdown_signal()).await?;
/// Ok(()) // the guard drops here: every queued event is written
/// ```
///
/// A second signal (e.g. Ctrl-C twice) ends the process at once. If the handlers cannot be registered, the error
/// is reported on stderr and the future never resolves (the signals then keep their default behaviour).
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub fn shutdown_signal() -> ShutdownSignal {
    let listener = match listener() {
        Ok(l) => Some(l),
        Err(e) => {
            crate::diag::report!(ERROR, "signal", "cannot wait for SIGTERM / SIGINT: {e}");
            None
        }
    };
    ShutdownSignal { listener }
}

/// The future of [`shutdown_signal`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub struct ShutdownSignal {
    listener: Option<&'static Listener>,
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(l) = self.listener else { return Poll::Pending };
        if l.received.load(Ordering::Acquire) != 0 {
            return Poll::Ready(());
        }
        {
            let mut wakers = l.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        }
        // A signal between the check and the registration has woken nobody: check again.
        if l.received.load(Ordering::Acquire) != 0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
