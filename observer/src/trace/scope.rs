//! Task and thread scopes for a "current" value kept in a thread-local (the current workflow, the current agent
//! trace): set for one poll of a future or one closure call, restored afterwards.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread-local slot holding the current value.
pub(crate) type Current<T> = &'static LocalKey<RefCell<Option<T>>>;

/// Makes `slot`'s value the current one for one poll (or one closure call), and puts it back into `slot` and
/// restores the previous current value when it ends, also on unwind.
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
