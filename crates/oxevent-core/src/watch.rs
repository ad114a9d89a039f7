//! Prepare and check watchers (libevent 2.2's `watch.h`): callbacks that run
//! just before the loop polls and just after, before active events run.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::base::EventBase;

/// What a watcher callback is told about the current iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchInfo {
    /// The timeout passed to the backend's wait (`None`: no timeout)
    /// (`evwatch_prepare_get_timeout`).
    #[doc(alias = "evwatch_prepare_get_timeout")]
    pub timeout: Option<Duration>,
}

/// A handle to a prepare or check watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[doc(alias = "evwatch")]
pub struct Watcher {
    prepare: bool,
    idx: u32,
    generation: u32,
}

type WatchCb = Box<dyn FnMut(&mut EventBase, &WatchInfo)>;

#[derive(Default)]
struct List {
    /// (generation, live, callback: `None` while running or freed).
    /// Slots are never reused, so handles stay unique.
    slots: Vec<(u32, bool, Option<WatchCb>)>,
    live: usize,
}

/// The watcher lists of a base.
#[derive(Default)]
pub(crate) struct Watchers {
    prepare: List,
    check: List,
}

impl fmt::Debug for Watchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchers")
            .field("prepare", &self.prepare.live)
            .field("check", &self.check.live)
            .finish()
    }
}

impl Watchers {
    pub(crate) fn has_prepare(&self) -> bool {
        self.prepare.live > 0
    }
    pub(crate) fn has_check(&self) -> bool {
        self.check.live > 0
    }
    fn list(&mut self, prepare: bool) -> &mut List {
        if prepare {
            &mut self.prepare
        } else {
            &mut self.check
        }
    }
}

impl EventBase {
    fn watch_new(&mut self, prepare: bool, cb: WatchCb) -> Watcher {
        let l = self.watchers.list(prepare);
        l.live += 1;
        // Keep registration order: append, reusing nothing (watchers are few).
        let idx = l.slots.len() as u32;
        l.slots.push((0, true, Some(cb)));
        Watcher {
            prepare,
            idx,
            generation: 0,
        }
    }

    /// Registers a callback to run just before each poll, in registration
    /// order (`evwatch_prepare_new`).
    #[doc(alias = "evwatch_prepare_new")]
    pub fn watch_prepare(
        &mut self,
        cb: impl FnMut(&mut EventBase, &WatchInfo) + 'static,
    ) -> Watcher {
        self.watch_new(true, Box::new(cb))
    }

    /// Registers a callback to run just after each poll, before active
    /// callbacks (`evwatch_check_new`).
    #[doc(alias = "evwatch_check_new")]
    pub fn watch_check(&mut self, cb: impl FnMut(&mut EventBase, &WatchInfo) + 'static) -> Watcher {
        self.watch_new(false, Box::new(cb))
    }

    /// Removes a watcher (`evwatch_free`); it may be called from any
    /// callback, the watcher's own included.
    ///
    /// # Errors
    ///
    /// `NotFound` if the watcher was already removed.
    #[doc(alias = "evwatch_free")]
    pub fn watch_free(&mut self, w: Watcher) -> io::Result<()> {
        let l = self.watchers.list(w.prepare);
        match l.slots.get_mut(w.idx as usize) {
            Some(s) if s.0 == w.generation && s.1 => {
                s.1 = false;
                s.2 = None;
                l.live -= 1;
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "stale watcher handle",
            )),
        }
    }

    pub(crate) fn run_watchers(&mut self, prepare: bool, info: WatchInfo) {
        let n = self.watchers.list(prepare).slots.len();
        for i in 0..n {
            let Some(mut cb) = self
                .watchers
                .list(prepare)
                .slots
                .get_mut(i)
                .and_then(|s| s.2.take())
            else {
                continue;
            };
            cb(self, &info);
            if let Some(s) = self.watchers.list(prepare).slots.get_mut(i) {
                if s.1 && s.2.is_none() {
                    s.2 = Some(cb);
                }
            }
        }
    }
}
