//! Password hashing (argon2id, about 19 MiB and tens of milliseconds each) in a bounded pool:
//! a fixed set of worker threads, sized from the cores, and a short queue in front of them.
//! INVARIANT: at most `workers` hashes run at once and at most `workers + queue` are admitted;
//! a request beyond that is refused at once (`Busy`, answered 503 with `Retry-After`) before
//! anything is allocated for it. Memory is therefore bounded by the workers (each reuses its
//! own allocator arena), not by how many clients sign in at once: unbounded `spawn_blocking`
//! let 200 concurrent sign-ins take the process to 5.7 GiB, never released.
//! The workers run at the lowest CPU priority (nice 19): hashing is real work but never urgent,
//! so under a flood of sign-ins the cores still go to checks and token requests first.

use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password checks are at capacity; retry shortly")]
pub struct Busy;

/// A bounded pool of password-hashing threads. Cheap to share (`Arc`).
pub struct PasswordPool {
    admitted: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    workers: usize,
    capacity: usize,
}

impl fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPool")
            .field("workers", &self.workers)
            .field("capacity", &self.capacity)
            .field("free", &self.admitted.available_permits())
            .finish()
    }
}

impl PasswordPool {
    /// The default size for this machine: half the cores (at least one), so hashing never
    /// takes every core from the requests that do not hash.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| (n.get() / 2).max(1))
            .unwrap_or(1)
    }

    /// A pool of `workers` threads (at least one) admitting `queue` more requests that wait.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tessera-argon2-{i}"))
                .spawn(move || loop {
                    lower_priority_once();
                    // The lock is held only to take the next job, not while it runs.
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return, // the pool was dropped
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-hashing thread");
            }
        }
        let capacity = workers + queue;
        Self {
            admitted: Arc::new(Semaphore::new(capacity)),
            jobs: Mutex::new(tx),
            workers,
            capacity,
        }
    }

    /// Runs `f` on a pool thread and waits for its result, or refuses at once when the pool
    /// and its queue are full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.admit()?.run(f).await
    }

    /// Takes a place in the pool now, to run one job later: a caller admits first, and only
    /// then does the work that prepares the job (a store read), so a refusal costs nothing.
    pub fn admit(&self) -> Result<Ticket<'_>, Busy> {
        let permit = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(Ticket { pool: self, permit })
    }

    /// How many requests the pool admits at once (running and queued).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A place in the pool, taken by [`PasswordPool::admit`]; dropped unused, it frees the place.
pub struct Ticket<'a> {
    pool: &'a PasswordPool,
    permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Ticket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ticket")
    }
}

impl Ticket<'_> {
    /// Runs `f` on a pool thread and waits for its result.
    pub async fn run<T, F>(self, f: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.permit;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = f();
            // The place is free once the work is done, whether or not the waiter is still there.
            drop(permit);
            let _ = tx.send(out);
        });
        self.pool
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }
}

/// Puts the calling thread at nice 19 (Linux: `setpriority` on a thread id affects that thread
/// only), once per thread. A failure (a platform without per-thread priorities) is harmless.
fn lower_priority_once() {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    DONE.with(|done| {
        if !done.replace(true) {
            let tid = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
                tracing::debug!(error = %e, "could not lower the hashing thread's priority");
            }
        }
    });
}

impl Default for PasswordPool {
    fn default() -> Self {
        let workers = Self::default_workers();
        Self::new(workers, workers * 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_at_most_workers_at_once_and_refuses_beyond_the_queue() {
        let pool = Arc::new(PasswordPool::new(2, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut done = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(Busy) => refused += 1,
            }
        }
        assert_eq!(done + refused, 20);
        assert!((5..=20).contains(&done), "{done}");
        assert!(refused > 0, "nothing was refused");
        assert!(peak.load(Ordering::SeqCst) <= 2);
        // Once drained, the pool admits again.
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
