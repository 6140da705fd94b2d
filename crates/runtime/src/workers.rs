//! Serving on several CPUs, one worker per CPU: each a thread running
//! Tokio's current-thread runtime, each serving the connections the main
//! thread hands it (to the worker with the fewest open). A call then runs
//! start to finish on one thread, with its connection's other calls (whose
//! answers go out together) and over that worker's own Redis connection
//! (`sigil_store::set_worker_thread`): no task or wake-up crosses threads
//! on the way. Measured against Tokio's work-stealing runtime in
//! docs/benchmarks.md ("Two cores against one").

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    thread::JoinHandle,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    runtime::Handle,
    sync::oneshot,
};
use tonic::transport::server::Connected;

/// The workers beyond the main thread's (which is worker 0), each running
/// what is spawned on it until dropped. Dropping joins their threads: drop
/// it outside of them.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Workers {
    /// Starts workers 1 to `count`, each on a thread of its own.
    pub fn start(count: usize) -> io::Result<Workers> {
        let mut workers = Workers {
            handles: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
        };
        for index in 1..=count {
            let (handle_sender, handle) = std::sync::mpsc::channel();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sigil-worker-{index}"))
                .spawn(move || {
                    sigil_store::set_worker_thread(index);
                    let runtime = match current_thread_runtime() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = handle_sender.send(Err(error));
                            return;
                        }
                    };
                    let _ = handle_sender.send(Ok(runtime.handle().clone()));
                    // Runs the tasks spawned through the handle until told
                    // to stop; dropping the runtime then ends what is left.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            let handle = handle
                .recv()
                .map_err(|_| io::Error::other("a worker thread ended at start"))??;
            workers.handles.push(handle);
            workers.threads.push((stop, thread));
        }
        Ok(workers)
    }

    /// The runtimes of workers 1 and on, in order.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .drain(..)
            .map(|(stop, thread)| {
                let _ = stop.send(());
                thread
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Tokio's current-thread runtime with I/O and timers: the main thread's,
/// and each worker's.
pub(crate) fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Chooses the worker for each new connection: the one with the fewest
/// open, so that connections closing on one worker do not leave it idle
/// while the others fill up; on a tie, the next after the last chosen.
pub(crate) struct Dealer {
    open: Vec<Arc<AtomicUsize>>,
    next: usize,
}

impl Dealer {
    /// A dealer between `workers` workers (the main thread's included).
    pub(crate) fn new(workers: usize) -> Dealer {
        Dealer {
            open: (0..workers.max(1)).map(|_| Arc::default()).collect(),
            next: 0,
        }
    }

    /// The worker for the next connection among those `serving`, and the
    /// token that counts the connection open there until dropped; `None`
    /// when no worker is serving.
    pub(crate) fn deal(&mut self, serving: impl Fn(usize) -> bool) -> Option<(usize, Open)> {
        let count = self.open.len();
        let worker = (0..count)
            .map(|offset| (self.next + offset) % count)
            .filter(|&worker| serving(worker))
            .min_by_key(|&worker| self.open[worker].load(Ordering::Relaxed))?;
        self.next = (worker + 1) % count;
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("sigil_worker_connections", "worker" => worker.to_string()).increment(1.0);
        let open = Open {
            worker,
            count: Arc::clone(&self.open[worker]),
        };
        Some((worker, open))
    }
}

/// One open connection of a worker's, counted until dropped.
pub(crate) struct Open {
    worker: usize,
    count: Arc<AtomicUsize>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("sigil_worker_connections", "worker" => self.worker.to_string())
            .decrement(1.0);
    }
}

/// A connection dealt to a worker: reads and writes go to `io`, and the
/// worker counts it open until it is dropped.
pub(crate) struct Dealt<Io> {
    io: Io,
    _open: Open,
}

impl<Io> Dealt<Io> {
    pub(crate) fn new(io: Io, open: Open) -> Dealt<Io> {
        Dealt { io, _open: open }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Dealt<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(context, buffer)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Dealt<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(context)
    }
}

impl<Io: Connected> Connected for Dealt<Io> {
    type ConnectInfo = Io::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::Dealer;

    #[test]
    fn deals_to_the_worker_with_the_fewest_open_connections() {
        let mut dealer = Dealer::new(2);
        let mut deal = || dealer.deal(|_| true).expect("both serve");
        let (first, first_open) = deal();
        let (second, second_open) = deal();
        assert_eq!((first, second), (0, 1), "ties go round");
        let (third, _third_open) = deal();
        assert_eq!(third, 0);
        // Worker 1's connection closes: it has the fewest now, twice over.
        drop(second_open);
        let (fourth, _fourth_open) = deal();
        assert_eq!(fourth, 1);
        drop(first_open);
        let (fifth, _fifth_open) = deal();
        assert_eq!(fifth, 0, "a tie again, after worker 1");
    }

    #[test]
    fn deals_nothing_to_a_worker_that_stopped_serving() {
        let mut dealer = Dealer::new(2);
        // Worker 1 has fewer open, but has stopped.
        let (_, _open) = dealer.deal(|_| true).expect("both serve");
        let (worker, _second) = dealer.deal(|worker| worker == 0).expect("worker 0 serves");
        assert_eq!(worker, 0);
        assert!(dealer.deal(|_| false).is_none());
    }
}
