//! The primitive: a thread-local slot made current for one poll or one closure call ([`ScopeGuard`]).

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread-local slot holding the current value (`None`: no current value).
pub(crate) type Current<T> = &'static LocalKey<RefCell<Option<T>>>;

/// Makes `slot`'s value the current one for one poll (or one closure call), and puts it back into `slot` and
/// restores the previous current value when it ends, also on unwind. A change made to the current value while
/// the guard is held (e.g. `set_actor_context` inside an actor scope) is written back into `slot`.
pub(crate) struct ScopeGuard<'a, T: 'static> {
    key: Current<T>,
    slot: &'a mut Option<T>,
    previous: Option<T>,
}

impl<'a, T: 'static> ScopeGuard<'a, T> {
    pub(crate) fn enter(key: Current<T>, slot: &'a mut Option<T>) -> Self {
        let ours = slot.take();
        let previous = key.with(|c| std::mem::replace(&mut *c.borrow_mut(), ours));
        Self { key, slot, previous }
    }
}

impl<T: 'static> Drop for ScopeGuard<'_, T> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: never panic, even if this runs while the thread-local is being destroyed.
        if let Ok(ours) = self.key.try_with(|c| std::mem::replace(&mut *c.borrow_mut(), previous)) {
            *self.slot = ours;
        }
    }
}

/// A clone of the current value, if any.
pub(crate) fn current<T: Clone + 'static>(key: Current<T>) -> Option<T> {
    key.try_with(|c| c.borrow().clone()).ok().flatten()
}
