//! Entering a lock whose last holder panicked. Every critical section in
//! improbe replaces or updates whole values, so what a poisoned lock guards
//! is still consistent: it is entered like any other, and one task's panic
//! (already logged and counted by `ticks::guarded`) does not spread to every
//! task that shares the lock.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`], through poisoning.
pub trait Locked<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`RwLock::read`] and [`RwLock::write`], through poisoning.
pub trait Shared<T> {
    fn reading(&self) -> RwLockReadGuard<'_, T>;
    fn writing(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> Shared<T> for RwLock<T> {
    fn reading(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn writing(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_whose_holder_panicked_is_still_entered() {
        let lock = std::sync::Arc::new(Mutex::new(1));
        let shared = std::sync::Arc::new(RwLock::new(2));
        let (l, s) = (lock.clone(), shared.clone());
        let _ = std::thread::spawn(move || {
            let _held = l.lock().unwrap();
            let _written = s.write().unwrap();
            panic!("poisons both");
        })
        .join();
        assert!(lock.is_poisoned() && shared.is_poisoned());
        *lock.locked() += 1;
        *shared.writing() += 1;
        assert_eq!((*lock.locked(), *shared.reading()), (2, 3));
    }
}
