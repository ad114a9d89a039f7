//! Core semantics, after libevent's `regress.c`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent_core::{
    Backend, Clock, Config, CountFlags, EventBase, Features, Interest, LoopFlags, LoopStatus,
    RawFd, ReadyList, What,
};

use crate::common::*;

#[test]
fn persistent_read_fires_for_each_write_and_is_level_triggered() {
    let _w = Watchdog::new("persistent read", Duration::from_secs(10));
    let mut base = base();
    let (mut a, b) = socketpair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let ev = base
        .event_new(
            b.as_raw_fd(),
            What::READ | What::PERSIST,
            move |_, _, what| {
                assert_eq!(what, What::READ);
                h.set(h.get() + 1);
            },
        )
        .unwrap();
    base.add(ev, None).unwrap();
    a.write_all(b"x").unwrap();
    // Not drained: level-triggered, so each iteration fires again.
    for i in 1..=3 {
        base.run(LoopFlags::ONCE).unwrap();
        assert_eq!(hits.get(), i);
    }
    base.free(ev).unwrap();
    assert_eq!(base.dispatch().unwrap(), LoopStatus::NoEvents);
}

#[test]
fn non_persistent_event_is_deleted_before_its_callback() {
    let mut base = base();
    let (mut a, b) = socketpair();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ, move |base, ev, _| {
            s.set(Some(base.pending(ev, What::all()).unwrap().0));
        })
        .unwrap();
    base.add(ev, Some(Duration::from_secs(5))).unwrap();
    a.write_all(b"x").unwrap();
    assert_eq!(base.dispatch().unwrap(), LoopStatus::NoEvents);
    assert_eq!(
        seen.get(),
        Some(What::empty()),
        "nothing pending inside the callback"
    );
    assert!(base.is_valid(ev), "deleted, not freed");
}

#[test]
fn several_events_share_one_fd() {
    let mut base = base();
    let (mut a, b) = socketpair();
    let got = log::<&str>();
    let (g1, g2, g3) = (got.clone(), got.clone(), got.clone());
    let r1 = base
        .event_new(b.as_raw_fd(), What::READ, move |_, _, _| {
            g1.borrow_mut().push("r1")
        })
        .unwrap();
    let r2 = base
        .event_new(b.as_raw_fd(), What::READ, move |_, _, _| {
            g2.borrow_mut().push("r2")
        })
        .unwrap();
    let w = base
        .event_new(b.as_raw_fd(), What::WRITE, move |_, _, _| {
            g3.borrow_mut().push("w")
        })
        .unwrap();
    for e in [r1, r2, w] {
        base.add(e, None).unwrap();
    }
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(*got.borrow(), ["w"], "only writable so far");
    a.write_all(b"x").unwrap();
    base.dispatch().unwrap();
    let mut v = got.borrow().clone();
    v.sort_unstable();
    assert_eq!(v, ["r1", "r2", "w"]);
    // Deleting one reader leaves the other watching.
    base.add(r1, None).unwrap();
    base.add(r2, None).unwrap();
    base.del(r1).unwrap();
    got.borrow_mut().clear();
    base.dispatch().unwrap();
    assert_eq!(*got.borrow(), ["r2"]);
}

#[test]
fn timers_fire_in_deadline_order() {
    let mut base = base();
    let order = log::<u32>();
    for (i, ms) in [(1u32, 30u64), (2, 10), (3, 20), (4, 10)] {
        let o = order.clone();
        let t = base.timer_new(move |_, _, what| {
            assert_eq!(what, What::TIMEOUT);
            o.borrow_mut().push(i);
        });
        base.add(t, Some(Duration::from_millis(ms))).unwrap();
    }
    let start = Instant::now();
    base.dispatch().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(29),
        "not early: {:?}",
        start.elapsed()
    );
    assert_eq!(*order.borrow(), [2, 4, 3, 1]);
}

#[test]
fn readding_resets_the_timeout_and_none_keeps_it() {
    let (clock, hand) = Clock::manual();
    let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
    let fired = Rc::new(Cell::new(0));
    let f = fired.clone();
    let t = base.timer_new(move |_, _, _| f.set(f.get() + 1));
    base.add(t, Some(Duration::from_secs(1))).unwrap();
    hand.advance(Duration::from_millis(900));
    base.run(LoopFlags::NONBLOCK).unwrap();
    base.add(t, Some(Duration::from_secs(1))).unwrap(); // re-armed at 0.9 + 1
    base.add(t, None).unwrap(); // leaves it armed
    hand.advance(Duration::from_millis(900));
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(fired.get(), 0);
    let (p, at) = base.pending(t, What::TIMEOUT).unwrap();
    assert_eq!(p, What::TIMEOUT);
    assert!(at.is_some());
    hand.advance(Duration::from_millis(100));
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(fired.get(), 1);
    assert_eq!(base.pending(t, What::all()).unwrap().0, What::empty());
}

#[test]
fn persistent_timer_rearms_without_drift() {
    let (clock, hand) = Clock::manual();
    let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
    let when = log::<Instant>();
    let w = when.clone();
    let ev = base
        .event_new(-1, What::PERSIST, move |base, _, _| {
            w.borrow_mut().push(base.now())
        })
        .unwrap();
    base.add(ev, Some(Duration::from_millis(100))).unwrap();
    for _ in 0..5 {
        hand.advance(Duration::from_millis(100));
        base.run(LoopFlags::NONBLOCK).unwrap();
    }
    let w = when.borrow();
    assert_eq!(w.len(), 5);
    for pair in w.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
    }
}

#[test]
fn callbacks_may_free_themselves_and_others() {
    let mut base = base();
    let ran = log::<&str>();
    let victim = {
        let r = ran.clone();
        base.user_new(move |_, _, _| r.borrow_mut().push("victim"))
    };
    let r = ran.clone();
    let killer = base.user_new(move |base, me, _| {
        r.borrow_mut().push("killer");
        base.free(victim).unwrap();
        base.free(me).unwrap();
        assert!(base.free(me).is_err(), "second free is an error");
    });
    base.activate(killer, What::READ, 1).unwrap();
    base.activate(victim, What::READ, 1).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        *ran.borrow(),
        ["killer"],
        "a freed event's queued callback never runs"
    );
    assert!(!base.is_valid(victim) && !base.is_valid(killer));
    assert_eq!(base.num_events(CountFlags::all()), 0);
}

#[test]
fn stale_handles_are_errors_even_after_slot_reuse() {
    let mut base = base();
    let a = base.timer_new(|_, _, _| {});
    base.free(a).unwrap();
    let b = base.timer_new(|_, _, _| {});
    assert_ne!(a, b);
    for r in [
        base.add(a, None),
        base.del(a),
        base.activate(a, What::TIMEOUT, 1),
        base.free(a),
    ] {
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
    assert!(base.pending(a, What::all()).is_err());
    assert!(base.is_valid(b));
}

#[test]
fn activate_merges_results_and_runs_once() {
    let mut base = base();
    let got = log::<What>();
    let g = got.clone();
    let ev = base.user_new(move |_, _, what| g.borrow_mut().push(what));
    base.activate(ev, What::READ, 1).unwrap();
    base.activate(ev, What::WRITE, 1).unwrap();
    assert_eq!(base.num_events(CountFlags::ACTIVE), 1);
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(*got.borrow(), [What::READ | What::WRITE]);
    // Deleting a queued event cancels its callback.
    base.activate(ev, What::READ, 1).unwrap();
    base.del(ev).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(got.borrow().len(), 1);
}

#[test]
fn only_the_highest_priority_queue_runs_each_iteration() {
    let mut base = EventBase::with_config(&Config::new().priorities(3)).unwrap();
    assert_eq!(base.npriorities(), 3);
    let order = log::<u16>();
    let mut evs = Vec::new();
    for p in [2u16, 0, 1, 0] {
        let o = order.clone();
        let ev = base.user_new(move |_, _, _| o.borrow_mut().push(p));
        base.priority_set(ev, p).unwrap();
        evs.push(ev);
    }
    // A prepare watcher marks each iteration with u16::MAX.
    let o = order.clone();
    base.watch_prepare(move |_, _| o.borrow_mut().push(u16::MAX));
    for &ev in &evs {
        base.activate(ev, What::READ, 1).unwrap();
    }
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    let m = u16::MAX;
    assert_eq!(
        *order.borrow(),
        [m, 0, 0, m, 1, m, 2],
        "one queue per iteration"
    );
    assert!(base.priority_set(evs[0], 3).is_err());
    assert!(EventBase::with_config(&Config::new().priorities(257)).is_err());
    assert!(EventBase::with_config(&Config::new().priorities(0)).is_err());
    assert!(EventBase::with_config(&Config::new().priorities(256)).is_ok());
}

#[test]
fn activating_a_higher_priority_event_preempts_the_current_queue() {
    let mut base = EventBase::with_config(&Config::new().priorities(2)).unwrap();
    let order = log::<&str>();
    let o = order.clone();
    let urgent = base.user_new(move |_, _, _| o.borrow_mut().push("urgent"));
    base.priority_set(urgent, 0).unwrap();
    let mut low = Vec::new();
    for name in ["low1", "low2"] {
        let o = order.clone();
        let ev = base.user_new(move |base, _, _| {
            o.borrow_mut().push(name);
            if name == "low1" {
                base.activate(urgent, What::READ, 1).unwrap();
            }
        });
        base.priority_set(ev, 1).unwrap();
        low.push(ev);
    }
    for &ev in &low {
        base.activate(ev, What::READ, 1).unwrap();
    }
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(*order.borrow(), ["low1", "urgent", "low2"]);
}

#[test]
fn max_dispatch_callbacks_limits_a_burst() {
    let cfg = Config::new().max_dispatch_interval(None, Some(2), 0);
    let mut base = EventBase::with_config(&cfg).unwrap();
    let n = Rc::new(Cell::new(0));
    for _ in 0..5 {
        let n = n.clone();
        let ev = base.user_new(move |_, _, _| n.set(n.get() + 1));
        base.activate(ev, What::READ, 1).unwrap();
    }
    let it = Rc::new(Cell::new(0));
    let i = it.clone();
    let per_iter = log::<u32>();
    let (p, n2) = (per_iter.clone(), n.clone());
    base.watch_check(move |_, _| {
        i.set(i.get() + 1);
        p.borrow_mut().push(n2.get());
    });
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(n.get(), 5);
    assert_eq!(
        *per_iter.borrow(),
        [0, 2, 4],
        "at most two callbacks before polling again"
    );
}

#[test]
fn loop_control_break_exit_continue() {
    let mut base = base();
    // loopbreak stops right after the current callback.
    let ran = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let r = ran.clone();
        let ev = base.user_new(move |base, _, _| {
            r.set(r.get() + 1);
            base.loopbreak();
        });
        base.activate(ev, What::READ, 1).unwrap();
    }
    assert_eq!(
        base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap(),
        LoopStatus::Done
    );
    assert_eq!(ran.get(), 1);
    assert!(base.got_break() && !base.got_exit());
    // The flags reset on the next run; the other two callbacks run now.
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(ran.get(), 2);
    assert!(base.got_break());
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(ran.get(), 3);

    // loopexit(after) with nothing else pending keeps the loop alive that long.
    let start = Instant::now();
    base.loopexit(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(
        base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap(),
        LoopStatus::Done
    );
    assert!(start.elapsed() >= Duration::from_millis(25));
    assert!(base.got_exit() && !base.got_break());

    // loopcontinue: the rest of the queue waits for the next iteration.
    let order = log::<u8>();
    let o = order.clone();
    let w = base.watch_check(move |_, _| o.borrow_mut().push(9));
    for i in 0..2u8 {
        let o = order.clone();
        let ev = base.user_new(move |base, _, _| {
            o.borrow_mut().push(i);
            base.loopcontinue();
        });
        base.activate(ev, What::READ, 1).unwrap();
    }
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    assert_eq!(*order.borrow(), [9, 0, 9, 1]);
    base.watch_free(w).unwrap();
}

#[test]
fn empty_base_exits_at_once_and_reentry_is_refused() {
    let mut base = base();
    assert_eq!(base.dispatch().unwrap(), LoopStatus::NoEvents);
    let err = Rc::new(Cell::new(None));
    let e = err.clone();
    let ev = base.user_new(move |base, _, _| e.set(Some(base.dispatch().unwrap_err().kind())));
    base.activate(ev, What::READ, 1).unwrap();
    base.dispatch().unwrap();
    assert_eq!(err.get(), Some(io::ErrorKind::WouldBlock));
}

#[test]
fn once_runs_once_without_a_handle() {
    let mut base = base();
    let (mut a, b) = socketpair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    base.once(b.as_raw_fd(), What::READ, None, move |_, what| {
        assert_eq!(what, What::READ);
        h.set(h.get() + 1);
    })
    .unwrap();
    let h = hits.clone();
    base.once(
        -1,
        What::TIMEOUT,
        Some(Duration::from_millis(5)),
        move |_, what| {
            assert_eq!(what, What::TIMEOUT);
            h.set(h.get() + 10);
        },
    )
    .unwrap();
    a.write_all(b"x").unwrap();
    assert_eq!(base.dispatch().unwrap(), LoopStatus::NoEvents);
    assert_eq!(hits.get(), 11);
    assert!(
        base.once(b.as_raw_fd(), What::READ | What::PERSIST, None, |_, _| {})
            .is_err()
    );
}

#[test]
fn remove_timer_keeps_io_pending() {
    let mut base = base();
    let (mut a, b) = socketpair();
    let got = log::<What>();
    let g = got.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ, move |_, _, w| {
            g.borrow_mut().push(w)
        })
        .unwrap();
    base.add(ev, Some(Duration::from_millis(5))).unwrap();
    base.remove_timer(ev).unwrap();
    assert_eq!(base.pending(ev, What::all()).unwrap(), (What::READ, None));
    std::thread::sleep(Duration::from_millis(10));
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert!(got.borrow().is_empty(), "no timeout fired");
    a.write_all(b"x").unwrap();
    base.dispatch().unwrap();
    assert_eq!(*got.borrow(), [What::READ]);
}

#[test]
fn io_and_timeout_on_one_event() {
    let mut base = base();
    let (_a, b) = socketpair();
    let got = log::<What>();
    let g = got.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ, move |_, _, w| {
            g.borrow_mut().push(w)
        })
        .unwrap();
    base.add(ev, Some(Duration::from_millis(10))).unwrap();
    base.dispatch().unwrap();
    assert_eq!(*got.borrow(), [What::TIMEOUT]);
    assert_eq!(
        base.pending(ev, What::all()).unwrap().0,
        What::empty(),
        "timeout removed the I/O too"
    );
}

#[test]
fn counts_foreach_and_dump() {
    let mut base = base();
    let (_a, b) = socketpair();
    let r = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    let t = base.timer_new(|_, _, _| {});
    let u = base.user_new(|_, _, _| {});
    base.add(r, Some(Duration::from_secs(60))).unwrap();
    base.add(t, Some(Duration::from_secs(60))).unwrap();
    base.activate(u, What::READ, 1).unwrap();
    assert_eq!(base.num_events(CountFlags::ADDED), 2);
    assert_eq!(base.num_events(CountFlags::ACTIVE), 1);
    assert_eq!(base.num_events(CountFlags::ADDED | CountFlags::ACTIVE), 3);
    base.add_virtual();
    assert_eq!(base.num_events(CountFlags::VIRTUAL), 1);
    base.del_virtual();
    let mut seen = Vec::new();
    base.foreach_event(|info| {
        seen.push((info.event, info.fd, info.active.is_some()));
        ControlFlow::Continue(())
    });
    seen.sort();
    let mut want = vec![
        (r, Some(b.as_raw_fd()), false),
        (t, None, false),
        (u, None, true),
    ];
    want.sort();
    assert_eq!(seen, want);
    let mut n = 0;
    base.foreach_event(|_| {
        n += 1;
        ControlFlow::Break(())
    });
    assert_eq!(n, 1);
    let mut out = Vec::new();
    base.dump_events(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("[fd {}] Read Persist Timeout=", b.as_raw_fd())),
        "{text}"
    );
    assert!(text.contains("Active="), "{text}");
    base.del(r).unwrap();
    base.del(t).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(base.num_events(CountFlags::all()), 0);
    assert_eq!(base.max_events(CountFlags::ADDED, true), 2);
    assert_eq!(base.max_events(CountFlags::ADDED, false), 0);
    let info = base.event_info(r).unwrap();
    assert_eq!(
        (info.fd, info.what, info.pending),
        (
            Some(b.as_raw_fd()),
            What::READ | What::PERSIST,
            What::empty()
        )
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut base = base();
    assert!(base.event_new(-1, What::READ, |_, _, _| {}).is_err());
    assert!(
        base.event_new(5, What::READ | What::SIGNAL, |_, _, _| {})
            .is_err()
    );
    for sig in [0, -3, 65, 1000, libc::SIGKILL, libc::SIGSTOP] {
        assert_eq!(
            base.signal_new(sig, |_, _, _| {}).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "{sig}"
        );
    }
    // An fd that is not open is refused when added.
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    drop(a);
    let ev = base.event_new(fd, What::READ, |_, _, _| {}).unwrap();
    assert!(base.add(ev, None).is_err());
    assert_eq!(base.num_events(CountFlags::ADDED), 0);
    // Huge timeouts saturate instead of overflowing.
    let t = base.timer_new(|_, _, _| {});
    base.add(t, Some(Duration::MAX)).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    base.free(t).unwrap();
    assert!(base.init_common_timeout(Duration::ZERO).is_err());
}

#[test]
fn mixing_edge_and_level_on_one_fd_is_refused() {
    let mut base = base();
    if !base.features().contains(Features::ET) {
        assert!(
            base.event_new(0, What::READ | What::ET, |_, _, _| {})
                .is_err()
        );
        return;
    }
    let (_a, b) = socketpair();
    let lt = base
        .event_new(b.as_raw_fd(), What::READ, |_, _, _| {})
        .unwrap();
    let et = base
        .event_new(b.as_raw_fd(), What::READ | What::ET, |_, _, _| {})
        .unwrap();
    base.add(lt, None).unwrap();
    assert_eq!(
        base.add(et, None).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn common_timeouts_fire_in_fifo_order() {
    let (clock, hand) = Clock::manual();
    let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
    let d = base.init_common_timeout(Duration::from_millis(50)).unwrap();
    let order = log::<u32>();
    let mut evs = Vec::new();
    for i in 0..100u32 {
        let o = order.clone();
        let ev = base.timer_new(move |_, _, _| o.borrow_mut().push(i));
        base.add(ev, Some(d)).unwrap();
        evs.push(ev);
        if i % 10 == 9 {
            hand.advance(Duration::from_millis(1));
            base.update_cache_time();
        }
    }
    // Remove a few from the middle and the head.
    for i in [0usize, 17, 55] {
        base.del(evs[i]).unwrap();
    }
    // Batch k (ids 10k..10k+9) was added at k ms; now it is 10 ms.
    hand.advance(Duration::from_millis(39));
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert!(order.borrow().is_empty());
    hand.advance(Duration::from_millis(1)); // 50 ms after the first batch
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(*order.borrow(), (1..10).collect::<Vec<_>>());
    hand.advance(Duration::from_millis(20));
    base.run(LoopFlags::NONBLOCK).unwrap();
    let want: Vec<u32> = (1..100).filter(|i| *i != 17 && *i != 55).collect();
    assert_eq!(*order.borrow(), want);
    assert_eq!(base.num_events(CountFlags::ADDED), 0);
}

#[test]
fn persistent_io_with_common_timeout_stays_ordered() {
    let (clock, hand) = Clock::manual();
    let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
    let d = base.init_common_timeout(Duration::from_millis(10)).unwrap();
    let fired = log::<u32>();
    for i in 0..3u32 {
        let f = fired.clone();
        let ev = base
            .event_new(-1, What::PERSIST, move |_, _, _| f.borrow_mut().push(i))
            .unwrap();
        base.add(ev, Some(d)).unwrap();
    }
    for _ in 0..3 {
        hand.advance(Duration::from_millis(10));
        base.run(LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(*fired.borrow(), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn watchers_run_around_the_poll() {
    let mut base = base();
    let order = log::<String>();
    let o = order.clone();
    let p = base
        .watch_prepare(move |_, info| o.borrow_mut().push(format!("prepare {:?}", info.timeout)));
    let o = order.clone();
    let c = base.watch_check(move |base, _| {
        o.borrow_mut().push("check".into());
        let me = base.running_event();
        assert!(me.is_none());
    });
    let o = order.clone();
    let t = base.timer_new(move |_, _, _| o.borrow_mut().push("timer".into()));
    base.add(t, Some(Duration::ZERO)).unwrap();
    base.dispatch().unwrap();
    let v = order.borrow().clone();
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].starts_with("prepare Some("));
    assert_eq!(v[1..], ["check", "timer"]);
    base.watch_free(p).unwrap();
    base.watch_free(c).unwrap();
    assert!(base.watch_free(c).is_err());
}

#[test]
fn config_selects_and_avoids_backends() {
    let all = oxevent_core::supported_methods();
    assert!(!all.is_empty());
    for m in &all {
        let cfg = Config::new().avoid_method(m).ignore_env(true);
        if let Ok(b) = EventBase::with_config(&cfg) {
            assert_ne!(b.method(), *m);
        }
        let only = Config::new().methods(
            oxevent_core::default_methods()
                .into_iter()
                .filter(|d| d.name == *m)
                .collect(),
        );
        let b = EventBase::with_config(&only.ignore_env(true)).unwrap();
        assert_eq!(b.method(), *m);
    }
    let et = EventBase::with_config(
        &Config::new()
            .require_features(Features::ET)
            .ignore_env(true),
    )
    .unwrap();
    assert!(et.features().contains(Features::ET));
    let none = Config::new().methods(Vec::new());
    assert_eq!(
        EventBase::with_config(&none).unwrap_err().kind(),
        io::ErrorKind::Unsupported
    );
}

/// A backend from "a user's own crate": wraps another and counts waits.
#[derive(Debug)]
struct Counting {
    inner: Box<dyn Backend>,
    waits: Rc<Cell<u32>>,
    fail: bool,
}

impl Backend for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn features(&self) -> Features {
        self.inner.features()
    }
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        fresh: bool,
    ) -> io::Result<()> {
        self.inner.set_interest(fd, old, new, fresh)
    }
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        self.waits.set(self.waits.get() + 1);
        if self.fail {
            return Err(io::Error::other("backend exploded"));
        }
        self.inner.wait(timeout, ready)
    }
    fn waker(&mut self) -> io::Result<oxevent_core::Waker> {
        self.inner.waker()
    }
    fn reinit(&mut self) -> io::Result<()> {
        self.inner.reinit()
    }
}

fn inner_backend() -> Box<dyn Backend> {
    let d = oxevent_core::default_methods()[0];
    (d.new)(&oxevent_core::BackendConfig::new()).unwrap()
}

#[test]
fn a_users_own_backend_plugs_in() {
    let waits = Rc::new(Cell::new(0));
    let mut base = EventBase::with_backend(Counting {
        inner: inner_backend(),
        waits: waits.clone(),
        fail: false,
    })
    .unwrap();
    assert_eq!(base.method(), "counting");
    let (mut a, mut b) = socketpair();
    let got = Rc::new(Cell::new(0u8));
    let g = got.clone();
    let fd = b.as_raw_fd();
    let ev = base
        .event_new(fd, What::READ, move |_, _, _| {
            let mut buf = [0u8; 1];
            b.read_exact(&mut buf).unwrap();
            g.set(buf[0]);
        })
        .unwrap();
    base.add(ev, None).unwrap();
    a.write_all(&[42]).unwrap();
    base.dispatch().unwrap();
    assert_eq!(got.get(), 42);
    assert!(waits.get() >= 1);
}

#[test]
fn a_failing_backend_is_an_error() {
    let waits = Rc::new(Cell::new(0));
    let mut base = EventBase::with_backend(Counting {
        inner: inner_backend(),
        waits,
        fail: true,
    })
    .unwrap();
    let t = base.timer_new(|_, _, _| {});
    base.add(t, Some(Duration::from_millis(1))).unwrap();
    let e = base.dispatch().unwrap_err();
    assert_eq!(e.to_string(), "backend exploded");
    assert!(!base.is_running(), "the base is usable after the error");
}

#[test]
fn reinit_keeps_every_event_working() {
    let mut base = base();
    let (mut a, b) = socketpair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, move |_, _, _| {
            h.set(h.get() + 1)
        })
        .unwrap();
    base.add(ev, None).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    base.reinit().unwrap();
    a.write_all(b"x").unwrap();
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(hits.get(), 1);
    let remote = base.remote().unwrap();
    base.reinit().unwrap();
    remote.loopbreak().unwrap();
    base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    assert!(base.got_break());
}

#[test]
fn time_is_cached_per_iteration_and_refreshable() {
    let mut base = base();
    let t0 = base.now();
    std::thread::sleep(Duration::from_millis(20));
    assert!(base.now() > t0, "fresh outside the loop");
    let seen = log::<(Instant, Instant, Instant)>();
    let s = seen.clone();
    let ev = base.user_new(move |base, _, _| {
        let a = base.now();
        std::thread::sleep(Duration::from_millis(20));
        let b = base.now();
        base.update_cache_time();
        s.borrow_mut().push((a, b, base.now()));
    });
    base.activate(ev, What::READ, 1).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    let (a, b, c) = seen.borrow()[0];
    assert_eq!(a, b, "cached within an iteration");
    assert!(c > b, "update_cache_time refreshes it");
    let wall = base.gettimeofday_cached();
    assert!(wall > std::time::SystemTime::UNIX_EPOCH);
}

#[test]
fn extensions_hold_per_layer_state() {
    #[derive(Default)]
    struct Layer {
        n: u32,
    }
    let mut base = base();
    assert!(base.extension_ref::<Layer>().is_none());
    base.extension::<Layer>().n += 1;
    let ev = base.user_new(|base, _, _| base.extension::<Layer>().n += 10);
    base.activate(ev, What::READ, 1).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(base.extension_ref::<Layer>().map(|l| l.n), Some(11));
}

#[test]
fn a_prepare_watcher_removing_the_last_event_ends_the_loop() {
    let _w = Watchdog::new("prepare removes last event", Duration::from_secs(10));
    let mut base = base();
    base.add_virtual();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    base.watch_prepare(move |base, _| {
        if !d.get() {
            d.set(true);
            base.del_virtual();
        }
    });
    assert_eq!(base.dispatch().unwrap(), LoopStatus::NoEvents);
}
