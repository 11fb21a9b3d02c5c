//! Waiting for a condition (`wait_until`) and locking what a panicking thread may
//! have poisoned (`lock`).

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every 10 ms until it is true or `timeout` has passed.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking reader thread must not hide the data from the test.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
