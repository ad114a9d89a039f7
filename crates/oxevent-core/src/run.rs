//! The loop: dispatch, run with flags, loop control, and introspection.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use crate::base::{Event, EventBase, EventInfo, Kind, NIL, NO_TIMEOUT, Slot, TimerState};
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
            let r = self.backend.wait(timeout, &mut self.ready);
            self.cache_valid = false;
            self.update_time();
            r?;
            if self.watchers.has_check() {
                self.run_watchers(false, WatchInfo { timeout });
            }
            let woken = self.ready.woken();
            self.dispatch_ready();
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

    /// Queues the callbacks of the events waiting on what the backend
    /// reported. This and [`process_queue`](Self::process_queue) are the
    /// per-event path: each works on the base's fields directly, so the
    /// per-fd list is walked in place and a slot is looked up once.
    fn dispatch_ready(&mut self) {
        let Self {
            ready,
            fds,
            slots,
            active,
            counts,
            io_events,
            ..
        } = self;
        if let [q] = &mut active[..] {
            // One priority (the default): every event goes to this queue,
            // and room for every I/O event is made up front, so the loop
            // has no call that could grow the queue.
            q.reserve(*io_events);
            for &(fd, r) in ready.events() {
                let Some(st) = fds.get(fd as usize) else {
                    continue;
                };
                let res = What::from_ready(r);
                for &idx in st.events.as_slice() {
                    let Some(Slot { act_seq, data, .. }) = slots.get_mut(idx as usize) else {
                        continue;
                    };
                    let Some(d) = data.as_mut() else {
                        continue;
                    };
                    let hit = d.what & res;
                    if hit.is_empty() {
                        continue;
                    }
                    if d.active {
                        d.res |= hit;
                        continue;
                    }
                    d.active = true;
                    d.res = hit;
                    d.ncalls = 1;
                    *act_seq = act_seq.wrapping_add(1);
                    q.push_reserved(idx, *act_seq);
                    q.live += 1;
                    counts.active += 1;
                }
            }
        } else {
            for &(fd, r) in ready.events() {
                let Some(st) = fds.get(fd as usize) else {
                    continue;
                };
                let res = What::from_ready(r);
                for &idx in st.events.as_slice() {
                    let hit = match slots.get(idx as usize).and_then(|s| s.data.as_ref()) {
                        Some(d) => d.what & res,
                        None => continue,
                    };
                    if !hit.is_empty() && Self::activate_in(slots, active, idx, hit, 1).is_some() {
                        counts.active += 1;
                    }
                }
            }
        }
        // Activation only adds here, so the high-water mark is now.
        counts.max_active = counts.max_active.max(counts.active);
        // A callback that drops its own fd can leave a report of it in the
        // list: nothing else may read the list later.
        ready.clear();
    }

    /// Runs the active callbacks of the highest-priority non-empty queue
    /// (or further queues if all it held were internal events).
    fn process_active(&mut self) -> usize {
        let mut total = 0;
        for p in 0..self.active.len() {
            if self.active[p].live == 0 {
                // Only dead entries (if any): drop them.
                self.active[p].clear();
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
        if let Some(q) = self.active.get_mut(p) {
            q.compact();
        }
        while let Some(q) = self.active.get_mut(p) {
            let Some((idx, seq)) = q.pop() else {
                q.clear();
                break;
            };
            // Start loading the next event while this one runs: a burst of
            // expired timers touches slots all over the slab.
            if let Some(next) = q.peek_hint() {
                crate::sys::hint::prefetch(self.slots.as_ptr().wrapping_add(next as usize));
            }
            // Off the active queue, keeping the result for the callback; a
            // dead entry (deactivated, or re-activated since) is skipped.
            let Some(s) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            if s.act_seq != seq {
                continue;
            }
            let generation = s.generation;
            let Some(d) = s.data.as_mut() else {
                continue;
            };
            if !d.active {
                continue;
            }
            d.active = false;
            q.live -= 1;
            self.counts.active -= 1;
            real += usize::from(!d.internal);
            let res = std::mem::replace(&mut d.res, What::empty());
            let ev = Event { idx, generation };
            // The common case, a persistent I/O or user event, needs no
            // bookkeeping before its callback but the re-arming of its
            // timeout, if it has one.
            let fast = d.what.contains(What::PERSIST) && d.kind != Kind::Signal && !d.once;
            let timeout = d.timeout;
            let cb = if fast {
                if timeout != NO_TIMEOUT {
                    self.persist_rearm(idx, res, timeout);
                    self.d(idx).cb.take()
                } else {
                    d.cb.take()
                }
            } else {
                None
            };
            match cb {
                Some(mut cb) => {
                    self.running_event = Some(ev);
                    cb(self, ev, res);
                    self.running_event = None;
                    self.flush_rearm();
                    // Put the closure back unless the event was freed (or
                    // given a new callback) meanwhile; not a `once` event.
                    if let Some(s) = self.slots.get_mut(idx as usize) {
                        if s.generation == generation {
                            if let Some(d) = s.data.as_mut() {
                                if d.cb.is_none() {
                                    d.cb = Some(cb);
                                }
                            }
                        }
                    }
                    if self.no_cache_time {
                        self.cache_valid = false;
                    }
                }
                None => self.process_one(ev, res),
            }
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

    /// Runs the callback of `ev`, just taken off its active queue with
    /// `res` as its result: the general case.
    #[inline(never)]
    fn process_one(&mut self, ev: Event, res: What) {
        let idx = ev.idx;
        let d = self.d(idx);
        let (what, kind, timeout, ncalls) = (d.what, d.kind, d.timeout, d.ncalls);
        if what.contains(What::PERSIST) {
            if timeout != NO_TIMEOUT {
                self.persist_rearm(idx, res, timeout);
            }
        } else if d.inserted || d.timer != TimerState::None {
            // A timer that expired is already off every list: skip the work.
            self.del_idx(idx);
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
        self.flush_rearm();
        if let Ok(d) = self.data_mut(ev) {
            if d.kind == Kind::Signal {
                d.ncalls = 0;
            }
        }
        self.callback_done(ev, cb);
    }

    /// After a callback: puts its closure back unless the event was freed
    /// (or given a new callback) meanwhile, and frees a `once` event.
    #[inline]
    fn callback_done(&mut self, ev: Event, cb: crate::base::Callback) {
        if let Ok(d) = self.data_mut(ev) {
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

    /// libevent's `event_persist_closure`: re-arms the timeout of a
    /// persistent event about to run, relative to its old deadline when the
    /// timeout fired, else to now, never in the past.
    #[inline(always)]
    fn persist_rearm(&mut self, idx: u32, res: What, rel: u64) {
        let now = self.now_ns();
        let defer = self.rearm == NIL && !self.is_common(rel);
        let d = self.d(idx);
        let from = if res.contains(What::TIMEOUT) {
            d.deadline
        } else {
            now
        };
        let mut at = from.saturating_add(rel);
        if at < now {
            at = now.saturating_add(rel);
        }
        if defer && d.timer == TimerState::Heap {
            // Only the slot moves now; the heap entry follows after the
            // callback, unless the callback re-arms or deletes the event
            // first (see `EventBase::rearm`).
            d.deadline = at;
            self.rearm = idx;
            return;
        }
        self.timer_set(idx, at, rel);
        self.recount(idx);
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
            let ev = Event {
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

#[cfg(all(test, unix))]
mod tests {
    //! The dispatch path's own semantics: the deferred re-arm of persistent
    //! timeouts and the active queues (the rest is in `tests/it`).

    use std::cell::{Cell, RefCell};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;
    use std::time::Duration;

    use oxevent_test_support::Watchdog;

    use crate::{Clock, Config, EventBase, LoopFlags, What};

    fn log<T>() -> Rc<RefCell<Vec<T>>> {
        Rc::new(RefCell::new(Vec::new()))
    }

    /// A persistent I/O event with a timeout: its timeout is re-armed before its
    /// callback runs (libevent's `event_persist_closure`), so the callback sees
    /// the new deadline, and if the callback leaves it alone the timer fires
    /// there, not at the old deadline.
    #[test]
    fn persistent_io_rearms_its_timeout_before_the_callback() {
        let (clock, hand) = Clock::manual();
        let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let seen = log::<(What, Option<std::time::Instant>, std::time::Instant)>();
        let s = seen.clone();
        let ev = base
            .event_new(
                b.as_raw_fd(),
                What::READ | What::PERSIST,
                move |base, ev, w| {
                    if w.contains(What::READ) {
                        let mut buf = [0u8; 16];
                        let _ = (&b).read(&mut buf);
                    }
                    let (_, deadline) = base.pending(ev, What::TIMEOUT).unwrap();
                    let now = base.now();
                    s.borrow_mut().push((w, deadline, now));
                },
            )
            .unwrap();
        base.add(ev, Some(Duration::from_millis(100))).unwrap();
        let start = base.now();
        // At 60 ms the fd becomes readable: the timeout moves to 160 ms.
        hand.advance(Duration::from_millis(60));
        (&a).write_all(b"x").unwrap();
        let _w = Watchdog::new("persist rearm", Duration::from_secs(10));
        while seen.borrow().is_empty() {
            base.run(LoopFlags::ONCE).unwrap();
        }
        {
            let v = seen.borrow();
            assert_eq!(v[0].0, What::READ);
            assert_eq!(v[0].1, Some(v[0].2 + Duration::from_millis(100)));
        }
        // Nothing at the old deadline (100 ms)...
        hand.advance(Duration::from_millis(50));
        base.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(seen.borrow().len(), 1, "fired at the old deadline");
        // ...and the timeout at the new one (160 ms).
        hand.advance(Duration::from_millis(50));
        base.run(LoopFlags::NONBLOCK).unwrap();
        let v = seen.borrow();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, What::TIMEOUT);
        assert_eq!(v[1].2 - start, Duration::from_millis(160));
        assert_eq!(v[1].1, Some(v[1].2 + Duration::from_millis(100)));
    }

    /// Timers of other events stay in deadline order while a persistent event's
    /// re-armed timeout is pending, whatever its callback does with it: leave it
    /// (it moves later), re-add with a new timeout, delete, or free the event.
    #[test]
    fn rearming_from_a_callback_keeps_timers_ordered() {
        for action in 0..4u8 {
            let (clock, hand) = Clock::manual();
            let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
            let fired = log::<&'static str>();
            let (a, b) = UnixStream::pair().unwrap();
            let f = fired.clone();
            let ev = base
                .event_new(
                    b.as_raw_fd(),
                    What::READ | What::PERSIST,
                    move |base, ev, w| {
                        if w.contains(What::TIMEOUT) {
                            f.borrow_mut().push("io-timeout");
                            return;
                        }
                        let mut buf = [0u8; 16];
                        let _ = (&b).read(&mut buf);
                        f.borrow_mut().push("io");
                        match action {
                            0 => {}
                            1 => base.add(ev, Some(Duration::from_millis(25))).unwrap(),
                            2 => base.del(ev).unwrap(),
                            _ => base.free(ev).unwrap(),
                        }
                    },
                )
                .unwrap();
            base.add(ev, Some(Duration::from_millis(10))).unwrap();
            for (ms, name) in [(15u64, "t15"), (30, "t30")] {
                let f = fired.clone();
                base.once(
                    -1,
                    What::TIMEOUT,
                    Some(Duration::from_millis(ms)),
                    move |_, _| {
                        f.borrow_mut().push(name);
                    },
                )
                .unwrap();
            }
            // The read comes at 5 ms: the timeout moves from 10 to 15 ms.
            hand.advance(Duration::from_millis(5));
            (&a).write_all(b"x").unwrap();
            let _w = Watchdog::new("rearm order", Duration::from_secs(10));
            while fired.borrow().is_empty() {
                base.run(LoopFlags::ONCE).unwrap();
            }
            for _ in 0..40 {
                hand.advance(Duration::from_millis(1));
                base.run(LoopFlags::NONBLOCK).unwrap();
            }
            // Equal deadlines fire in the order their timers were armed.
            let want: &[&str] = match action {
                // Re-armed to 15 ms by the read, then every 10 ms from there.
                0 => &[
                    "io",
                    "t15",
                    "io-timeout",
                    "io-timeout",
                    "t30",
                    "io-timeout",
                    "io-timeout",
                ],
                // Re-added for 25 ms at 5 ms: 30 ms, after the one-shot for 30.
                1 => &["io", "t15", "t30", "io-timeout"],
                _ => &["io", "t15", "t30"],
            };
            assert_eq!(*fired.borrow(), want, "action {action}");
            if action < 3 {
                base.free(ev).unwrap();
            }
        }
    }

    /// A callback that keeps activating events of its own priority runs them in
    /// the same pass, in order, however many there are.
    #[test]
    fn self_reactivation_runs_every_time_in_order() {
        let mut base = EventBase::new().unwrap();
        let n = Rc::new(Cell::new(0u32));
        let order = log::<u8>();
        let (n2, o2) = (n.clone(), order.clone());
        let other = base.user_new(move |_, _, _| o2.borrow_mut().push(1));
        let o3 = order.clone();
        let me = base.user_new(move |base, ev, _| {
            n2.set(n2.get() + 1);
            o3.borrow_mut().push(0);
            if n2.get() < 5000 {
                base.activate(ev, What::READ, 1).unwrap();
                if n2.get() % 1000 == 0 {
                    base.activate(other, What::READ, 1).unwrap();
                }
            }
        });
        base.activate(me, What::READ, 1).unwrap();
        base.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 5000);
        let o = order.borrow();
        assert_eq!(o.len(), 5004);
        // `other` runs right after the activation of `me` queued beside it.
        for k in 1..=4usize {
            let at = k * 1000 + k;
            assert_eq!(o[at], 1, "at {at}");
        }
        base.free(me).unwrap();
        base.free(other).unwrap();
    }

    /// With several priorities the I/O dispatch takes the general path:
    /// every ready event is queued at its own priority, and only the first
    /// non-empty queue runs per iteration.
    #[test]
    fn io_events_are_queued_at_their_priority() {
        let mut base = EventBase::with_config(&Config::new().priorities(2)).unwrap();
        let (a1, b1) = UnixStream::pair().unwrap();
        let (a2, b2) = UnixStream::pair().unwrap();
        let order = log::<&'static str>();
        let mut evs = Vec::new();
        for (name, fd, prio) in [
            ("low", b1.as_raw_fd(), 1u16),
            ("low-too", b1.as_raw_fd(), 1),
            ("high", b2.as_raw_fd(), 0),
        ] {
            let o = order.clone();
            let ev = base
                .event_new(fd, What::READ, move |_, _, _| o.borrow_mut().push(name))
                .unwrap();
            base.priority_set(ev, prio).unwrap();
            base.add(ev, None).unwrap();
            evs.push(ev);
        }
        // A prepare watcher marks each iteration.
        let o = order.clone();
        let w = base.watch_prepare(move |_, _| o.borrow_mut().push("|"));
        (&a1).write_all(b"x").unwrap();
        (&a2).write_all(b"x").unwrap();
        let _w = Watchdog::new("priority dispatch", Duration::from_secs(10));
        // Both fds are ready in the first wait: the high-priority event runs
        // alone in that iteration, the two low ones in the next.
        base.run(LoopFlags::ONCE).unwrap();
        assert_eq!(*order.borrow(), ["|", "high", "|", "low", "low-too"]);
        base.watch_free(w).unwrap();
        for ev in evs {
            base.free(ev).unwrap();
        }
    }
}
