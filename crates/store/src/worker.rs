//! Which serving worker runs on the current thread. A service given several
//! CPUs runs one single-threaded runtime per CPU (see `sigil_runtime`);
//! each worker's Redis calls then go through a connection of its own, whose
//! reads and writes run on the worker's own thread rather than waking
//! another one for every call.

use std::cell::Cell;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as serving worker `index` (0 is the main
/// thread, and any thread never marked).
pub fn set_worker_thread(index: usize) {
    WORKER.set(index);
}

/// The worker the current thread serves.
pub(crate) fn current_worker() -> usize {
    WORKER.get()
}
