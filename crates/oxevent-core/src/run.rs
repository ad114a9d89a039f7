//! The loop: dispatch, run with flags, loop control, and introspection.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use crate::base::{EventBase, EventInfo, Kind, TimerState};
use crate::flags::{LoopFlags, What};
use crate::watch::WatchInfo;

/// How a call to [`EventBase::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopStatus {
    /// The loop stopped because of a loop exit or break, or because the
    /// `ONCE` or `NONBLOCK` work was done (libevent's `0`).
    Done,
    /// No events were pending or active (libevent's `1`).
    NoEvents,
}

impl EventBase {
    /// Runs the loop until no events remain or a loop exit or break
    /// (`event_base_dispatch`).
    ///
    /// # Errors
    ///
    /// The backend's error, or `WouldBlock` if the loop is already running
    /// (re-entrant call from a callback).
    #[doc(alias = "event_base_dispatch")]
    pub fn dispatch(&mut self) -> io::Result<LoopStatus> {
        self.run(LoopFlags::empty())
    }

    /// Runs the loop with `flags` (`event_base_loop`).
    ///
    /// Each iteration: check loop control, compute the wait from the nearest
    /// timer, run prepare watchers, flush the changelist, wait in the backend,
    /// update the cached time, run check watchers, queue ready I/O and
    /// expired timers, then run the callbacks of the highest non-empty
    /// priority.
    ///
    /// # Errors
    ///
    /// The backend's error, or `WouldBlock` if the loop is already running.
    #[doc(alias = "event_base_loop")]
    pub fn run(&mut self, flags: LoopFlags) -> io::Result<LoopStatus> {
        if self.running {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the event loop is already running",
            ));
        }
        self.running = true;
        self.got_exit = false;
        self.got_break = false;
        let r = self.run_inner(flags);
        self.running = false;
        self.running_event = None;
        self.running_priority = None;
        self.cache_valid = false;
        r
    }

    fn run_inner(&mut self, flags: LoopFlags) -> io::Result<LoopStatus> {
        loop {
            self.cache_valid = false;
            if self.remote_pending() {
                self.process_remote();
            }
            if self.got_exit || self.got_break {
                return Ok(LoopStatus::Done);
            }
            let timeout = if self.counts.active > 0 || flags.contains(LoopFlags::NONBLOCK) {
                Some(Duration::ZERO)
            } else {
                self.next_timeout()
            };
            if !flags.contains(LoopFlags::NO_EXIT_ON_EMPTY) && !self.has_events() {
                // Leave the kernel's view tidy: pending removals go out now.
                self.flush_changes();
                return Ok(LoopStatus::NoEvents);
            }
            let mut timeout = timeout;
            if self.watchers.has_prepare() {
                self.run_watchers(true, WatchInfo { timeout });
                // A watcher may have queued callbacks or armed a sooner timer
                // (the bufferevent layer flushes its writes here).
                if self.counts.active > 0 || self.got_break || self.got_exit {
                    timeout = Some(Duration::ZERO);
                } else if !flags.contains(LoopFlags::NONBLOCK) {
                    timeout = self.next_timeout();
                }
                // ... or removed the last events (never sleep with nothing to wait for).
                if !flags.contains(LoopFlags::NO_EXIT_ON_EMPTY) && !self.has_events() {
                    self.flush_changes();
                    return Ok(LoopStatus::NoEvents);
                }
            }
            self.flush_changes();
            self.ready.clear();
            let mut ready = std::mem::take(&mut self.ready);
            let r = self.backend.wait(timeout, &mut ready);
            self.cache_valid = false;
            self.update_time();
            if let Err(e) = r {
                self.ready = ready;
                return Err(e);
            }
            if self.watchers.has_check() {
                self.run_watchers(false, WatchInfo { timeout });
            }
            let woken = ready.woken();
            for (fd, r) in ready.drain() {
                self.dispatch_ready(fd, r);
            }
            self.ready = ready;
            if woken || self.remote_pending() {
                self.process_remote();
            }
            self.process_timeouts();
            if self.counts.active > 0 {
                let n = self.process_active();
                if self.got_break {
                    return Ok(LoopStatus::Done);
                }
                if flags.contains(LoopFlags::ONCE) && self.counts.active == 0 && n != 0 {
                    return Ok(LoopStatus::Done);
                }
            } else if flags.contains(LoopFlags::NONBLOCK) {
                return Ok(LoopStatus::Done);
            }
        }
    }

    fn dispatch_ready(&mut self, fd: oxevent_backend::RawFd, r: oxevent_backend::Ready) {
        let Some(st) = self.fds.get(fd as usize) else {
            return;
        };
        let mut res = What::empty();
        res.set(What::READ, r.contains(oxevent_backend::Ready::READ));
        res.set(What::WRITE, r.contains(oxevent_backend::Ready::WRITE));
        res.set(What::CLOSED, r.contains(oxevent_backend::Ready::CLOSED));
        let n = st.events.len();
        for i in 0..n {
            let idx = self.fds[fd as usize].events[i];
            let hit = self.d(idx).what & res;
            if !hit.is_empty() {
                self.activate_idx(idx, hit, 1);
            }
        }
    }

    /// Runs the active callbacks of the highest-priority non-empty queue
    /// (or further queues if all it held were internal events).
    fn process_active(&mut self) -> usize {
        let mut total = 0;
        for p in 0..self.active.len() {
            if self.active[p].live == 0 {
                // Only dead entries (if any): drop them.
                self.active[p].queue.clear();
                continue;
            }
            let limited = p as u16 >= self.max_dispatch.min_priority
                && (self.max_dispatch.callbacks.is_some() || self.max_dispatch.interval.is_some());
            self.running_priority = Some(p as u16);
            let n = self.process_queue(p, limited);
            self.running_priority = None;
            total += n;
            if self.got_break || n > 0 {
                break;
            }
        }
        self.continue_req = false;
        total
    }

    fn process_queue(&mut self, p: usize, limited: bool) -> usize {
        let mut real = 0usize;
        let mut ran = 0u32;
        let start = if limited { self.clock.precise_ns() } else { 0 };
        self.continue_req = false;
        while let Some(idx) = self.pop_active(p) {
            // Off the active queue, keeping the result for the callback.
            let d = self.d(idx);
            d.active = false;
            let (internal, prio) = (d.internal, usize::from(d.priority));
            self.active[prio].live -= 1;
            self.counts.active -= 1;
            if !internal {
                real += 1;
            }
            self.process_one(idx);
            ran += 1;
            if self.got_break || self.continue_req {
                break;
            }
            if limited {
                if self.max_dispatch.callbacks.is_some_and(|m| ran >= m) {
                    break;
                }
                if let Some(iv) = self.max_dispatch.interval {
                    if self.clock.precise_ns().saturating_sub(start) >= crate::clock::dur_ns(iv) {
                        break;
                    }
                }
            }
        }
        real
    }

    fn process_one(&mut self, idx: u32) {
        let ev = self.handle(idx);
        let (what, res, kind, timeout, deadline, ncalls) = {
            let d = self.d(idx);
            let r = (d.what, d.res, d.kind, d.timeout, d.deadline, d.ncalls);
            d.res = What::empty();
            r
        };
        if what.contains(What::PERSIST) {
            if timeout != crate::base::NO_TIMEOUT {
                let rel = timeout;
                // libevent's event_persist_closure: re-arm relative to the old
                // deadline when the timeout fired, else to now; never in the past.
                let now = self.now_ns();
                let from = if res.contains(What::TIMEOUT) {
                    deadline
                } else {
                    now
                };
                let mut at = from.saturating_add(rel);
                if at < now {
                    at = now.saturating_add(rel);
                }
                self.timer_set(idx, at, rel);
                self.recount(idx);
            }
        } else {
            let d = self.d(idx);
            // A timer that expired is already off every list: skip the work.
            if d.inserted || d.timer != TimerState::None {
                self.del_idx(idx);
            }
        }
        let Some(mut cb) = self.d(idx).cb.take() else {
            return;
        };
        self.running_event = Some(ev);
        if kind == Kind::Signal {
            let mut left = ncalls.max(1);
            loop {
                left -= 1;
                self.d(idx).ncalls = left;
                cb(self, ev, res);
                if left == 0 || self.got_break {
                    break;
                }
                // A delete or free from inside the callback stops the repeats
                // (libevent's ev_pncalls).
                match self.data(ev) {
                    Ok(d) if d.ncalls == left => {}
                    _ => break,
                }
            }
        } else {
            cb(self, ev, res);
        }
        self.running_event = None;
        if let Ok(d) = self.data_mut(ev) {
            if d.kind == Kind::Signal {
                d.ncalls = 0;
            }
            if d.cb.is_none() {
                d.cb = Some(cb);
            }
            if d.once {
                let _ = self.free(ev);
            }
        }
        if self.no_cache_time {
            self.cache_valid = false;
        }
    }

    /// Exits the loop after `after` (or once the current callbacks finish if
    /// `None`) (`event_base_loopexit`). The request is kept even if the loop
    /// is not running now.
    ///
    /// # Errors
    ///
    /// Only what [`once`](Self::once) can return.
    #[doc(alias = "event_base_loopexit")]
    pub fn loopexit(&mut self, after: Option<Duration>) -> io::Result<()> {
        self.once(
            -1,
            What::TIMEOUT,
            Some(after.unwrap_or(Duration::ZERO)),
            |base, _| {
                base.got_exit = true;
            },
        )
    }

    /// Exits the loop right after the current callback (`event_base_loopbreak`).
    #[doc(alias = "event_base_loopbreak")]
    pub fn loopbreak(&mut self) {
        self.got_break = true;
    }

    /// Stops running the current queue and polls for new events right after
    /// the current callback (`event_base_loopcontinue`).
    #[doc(alias = "event_base_loopcontinue")]
    pub fn loopcontinue(&mut self) {
        self.continue_req = true;
    }

    /// Whether the last loop ended through [`loopexit`](Self::loopexit)
    /// (`event_base_got_exit`).
    #[doc(alias = "event_base_got_exit")]
    #[must_use]
    pub fn got_exit(&self) -> bool {
        self.got_exit
    }

    /// Whether the last loop ended through [`loopbreak`](Self::loopbreak)
    /// (`event_base_got_break`).
    #[doc(alias = "event_base_got_break")]
    #[must_use]
    pub fn got_break(&self) -> bool {
        self.got_break
    }

    /// Whether the loop is running now.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Calls `f` for every pending or active event, internal ones excluded,
    /// until it returns `Break` (`event_base_foreach_event`).
    #[doc(alias = "event_base_foreach_event")]
    pub fn foreach_event(&self, mut f: impl FnMut(&EventInfo) -> ControlFlow<()>) {
        for (i, s) in self.slots.iter().enumerate() {
            let Some(d) = &s.data else { continue };
            if d.internal || !(d.inserted || d.active || d.timer != TimerState::None) {
                continue;
            }
            let ev = crate::base::Event {
                idx: i as u32,
                generation: s.generation,
            };
            if f(&self.info_of(ev, d)).is_break() {
                return;
            }
        }
    }

    /// Writes a description of every pending and active event to `out`
    /// (`event_base_dump_events`).
    ///
    /// # Errors
    ///
    /// The writer's error.
    #[doc(alias = "event_base_dump_events")]
    pub fn dump_events(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Inserted events ({}):", self.method())?;
        let mut r = Ok(());
        let now = self.now;
        self.foreach_event(|info| {
            let mut line = format!("  {:?}", info.event);
            if let Some(fd) = info.fd {
                line.push_str(&format!(" [fd {fd}]"));
            }
            if let Some(s) = info.signal {
                line.push_str(&format!(" [signal {s}]"));
            }
            for (flag, name) in [
                (What::READ, "Read"),
                (What::WRITE, "Write"),
                (What::CLOSED, "EOF"),
                (What::SIGNAL, "Signal"),
                (What::PERSIST, "Persist"),
                (What::ET, "ET"),
            ] {
                if info.what.contains(flag) {
                    line.push(' ');
                    line.push_str(name);
                }
            }
            if let Some(dl) = info.deadline {
                let left = dl.saturating_duration_since(self.clock.to_instant(now));
                line.push_str(&format!(" Timeout={left:?}"));
            }
            if let Some(a) = info.active {
                line.push_str(&format!(" Active={a:?}"));
            }
            r = writeln!(out, "{line}");
            if r.is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        r
    }
}
