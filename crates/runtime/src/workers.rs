//! Serving on several CPUs, one worker per CPU: each a thread running
//! Tokio's current-thread runtime, each serving the connections the main
//! thread hands it, round robin. A call then runs start to finish on one
//! thread, with its connection's other calls (whose answers go out
//! together) and over that worker's own Redis connection
//! (`sigil_store::set_worker_thread`): no task or wake-up crosses threads
//! on the way. Measured against Tokio's work-stealing runtime in
//! docs/benchmarks.md ("Two cores against one").

use std::{io, thread::JoinHandle};

use tokio::{runtime::Handle, sync::oneshot};

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
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    let runtime = match runtime {
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
