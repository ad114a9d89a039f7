//! `Remote`: the cross-thread handle of a base.
//!
//! Another thread can run a closure on the loop, activate an event, and ask
//! for a loop break or exit. Messages go into a mutex-protected queue (the
//! only lock, and it is off the hot path: the loop looks at it only when the
//! backend's waker fired or the `pending` flag is set). A loop break sent
//! before the loop runs is kept, not lost (libevent #573).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oxevent_backend::Waker;

use crate::base::{Event, EventBase};
use crate::flags::What;

type RemoteFn = Box<dyn FnOnce(&mut EventBase) + Send>;

enum Msg {
    Run(RemoteFn),
    Activate(Event, What),
    Exit(Option<Duration>),
}

pub(crate) struct RemoteShared {
    queue: Mutex<Vec<Msg>>,
    pending: AtomicBool,
    break_req: AtomicBool,
    waker: Waker,
    /// The thread the base lives on (a base is `!Send`, so it never moves).
    owner: std::thread::ThreadId,
}

/// A `Send + Sync + Clone` handle to an [`EventBase`] for other threads.
///
/// ```
/// use oxevent_core::{EventBase, LoopFlags};
/// let mut base = EventBase::new().unwrap();
/// let remote = base.remote().unwrap();
/// let t = std::thread::spawn(move || {
///     remote.run_in_loop(|base| base.loopbreak()).unwrap();
/// });
/// t.join().unwrap();
/// base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
/// assert!(base.got_break());
/// ```
#[derive(Clone)]
pub struct Remote(Arc<RemoteShared>);

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("pending", &self.0.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl Remote {
    fn send(&self, m: Msg) -> io::Result<()> {
        self.0
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(m);
        self.0.pending.store(true, Ordering::Release);
        self.0.waker.wake()
    }

    /// Runs `f` on the loop's thread with `&mut EventBase`, during the
    /// loop's next iteration.
    ///
    /// # Errors
    ///
    /// The OS error from waking the loop (the closure stays queued).
    pub fn run_in_loop(&self, f: impl FnOnce(&mut EventBase) + Send + 'static) -> io::Result<()> {
        self.send(Msg::Run(Box::new(f)))
    }

    /// Activates `ev` with `what` from another thread (`event_active` on a
    /// threadsafe base). A stale handle is ignored when the message arrives.
    ///
    /// # Errors
    ///
    /// The OS error from waking the loop.
    #[doc(alias = "event_active")]
    pub fn activate(&self, ev: Event, what: What) -> io::Result<()> {
        self.send(Msg::Activate(ev, what))
    }

    /// Whether the calling thread is the base's own thread, where the base
    /// must be used directly rather than through this handle (a blocking
    /// request to the loop from its own thread would wait for itself).
    #[must_use]
    pub fn is_loop_thread(&self) -> bool {
        std::thread::current().id() == self.0.owner
    }

    /// Asks the loop to break (`event_base_loopbreak`). If the loop is not
    /// running, the next run of it returns at once.
    ///
    /// # Errors
    ///
    /// The OS error from waking the loop.
    #[doc(alias = "event_base_loopbreak")]
    pub fn loopbreak(&self) -> io::Result<()> {
        self.0.break_req.store(true, Ordering::Release);
        self.0.pending.store(true, Ordering::Release);
        self.0.waker.wake()
    }

    /// Asks the loop to exit after `after` (`event_base_loopexit`).
    ///
    /// # Errors
    ///
    /// The OS error from waking the loop.
    #[doc(alias = "event_base_loopexit")]
    pub fn loopexit(&self, after: Option<Duration>) -> io::Result<()> {
        self.send(Msg::Exit(after))
    }
}

impl EventBase {
    /// The cross-thread handle of this base. Makes the base notifiable
    /// (`evthread_make_base_notifiable`): the first call creates the
    /// backend's waker (an eventfd or a pipe).
    ///
    /// # Errors
    ///
    /// The OS error creating the waker, or `Unsupported` from a backend
    /// without one.
    #[doc(alias = "evthread_make_base_notifiable")]
    pub fn remote(&mut self) -> io::Result<Remote> {
        if let Some(r) = &self.remote {
            return Ok(Remote(r.clone()));
        }
        let waker = self.waker()?;
        let shared = Arc::new(RemoteShared {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            break_req: AtomicBool::new(false),
            waker,
            owner: std::thread::current().id(),
        });
        self.remote = Some(shared.clone());
        Ok(Remote(shared))
    }

    pub(crate) fn remote_pending(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|r| r.pending.load(Ordering::Acquire))
    }

    pub(crate) fn process_remote(&mut self) {
        let Some(r) = self.remote.clone() else { return };
        r.pending.store(false, Ordering::Release);
        if r.break_req.swap(false, Ordering::AcqRel) {
            self.got_break = true;
        }
        let msgs = std::mem::take(&mut *r.queue.lock().unwrap_or_else(PoisonError::into_inner));
        for m in msgs {
            match m {
                Msg::Run(f) => f(self),
                Msg::Activate(ev, what) => {
                    let _ = self.activate(ev, what, 1);
                }
                Msg::Exit(after) => {
                    if let Err(e) = self.loopexit(after) {
                        tracing::warn!(error = %e, "remote loopexit failed");
                    }
                }
            }
        }
    }
}
