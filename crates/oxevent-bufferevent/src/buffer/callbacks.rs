//! Change callbacks: [`CbInfo`], [`CallbackId`] and the per-buffer list.
//!
//! A callback runs after every operation that changes the buffer's length,
//! with the length before the operation and the bytes added and removed.
//! A callback can be disabled, suspended (its notifications are coalesced
//! and delivered, once, when it is unsuspended) or removed. When the buffer
//! is in deferred mode ([`Buffer::defer_callbacks`](super::Buffer::defer_callbacks))
//! nothing runs inline: changes are coalesced per callback and delivered
//! when the owner calls
//! [`Buffer::run_deferred_callbacks`](super::Buffer::run_deferred_callbacks).
//! The bufferevent layer calls that from the event loop, which is what
//! libevent's `evbuffer_defer_callbacks(buffer, base)` does.

use std::fmt;

/// What changed, as given to a buffer callback.
#[doc(alias = "evbuffer_cb_info")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CbInfo {
    /// The buffer's length before the (first coalesced) change.
    pub orig_size: usize,
    /// Bytes added since then.
    pub n_added: usize,
    /// Bytes removed since then.
    pub n_deleted: usize,
}

/// Handle to a callback registered with
/// [`Buffer::add_cb`](super::Buffer::add_cb).
#[doc(alias = "evbuffer_cb_entry")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(pub(crate) u64);

type CbFn = Box<dyn FnMut(&CbInfo)>;

struct Entry {
    id: u64,
    enabled: bool,
    suspended: bool,
    pending: Option<CbInfo>,
    f: CbFn,
}

/// The callbacks of one buffer.
#[derive(Default)]
pub(crate) struct Callbacks {
    entries: Vec<Entry>,
    next_id: u64,
    pub(crate) deferred: bool,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("count", &self.entries.len())
            .field("deferred", &self.deferred)
            .finish()
    }
}

fn coalesce(p: &mut Option<CbInfo>, info: CbInfo) {
    match p {
        Some(p) => {
            p.n_added += info.n_added;
            p.n_deleted += info.n_deleted;
        }
        None => *p = Some(info),
    }
}

impl Callbacks {
    pub(crate) fn add(&mut self, f: CbFn) -> CallbackId {
        self.next_id += 1;
        self.entries.push(Entry {
            id: self.next_id,
            enabled: true,
            suspended: false,
            pending: None,
            f,
        });
        CallbackId(self.next_id)
    }

    fn find(&mut self, id: CallbackId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id.0)
    }

    pub(crate) fn remove(&mut self, id: CallbackId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id.0);
        before != self.entries.len()
    }

    pub(crate) fn set_enabled(&mut self, id: CallbackId, on: bool) -> bool {
        self.find(id).map(|e| e.enabled = on).is_some()
    }

    pub(crate) fn suspend(&mut self, id: CallbackId) -> bool {
        self.find(id).map(|e| e.suspended = true).is_some()
    }

    /// Unsuspends; delivers what accumulated unless in deferred mode.
    pub(crate) fn unsuspend(&mut self, id: CallbackId) -> bool {
        let deferred = self.deferred;
        match self.find(id) {
            Some(e) => {
                e.suspended = false;
                if !deferred {
                    if let Some(info) = e.pending.take() {
                        (e.f)(&info);
                    }
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn notify(&mut self, info: CbInfo) {
        let deferred = self.deferred;
        for e in &mut self.entries {
            if !e.enabled {
                continue;
            }
            if deferred || e.suspended {
                coalesce(&mut e.pending, info);
            } else {
                (e.f)(&info);
            }
        }
    }

    /// Delivers the coalesced changes of every callback that is not
    /// suspended; returns how many callbacks ran.
    pub(crate) fn run_pending(&mut self) -> usize {
        let mut ran = 0;
        for e in &mut self.entries {
            if e.suspended {
                continue;
            }
            if let Some(info) = e.pending.take() {
                if e.enabled {
                    (e.f)(&info);
                    ran += 1;
                }
            }
        }
        ran
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
