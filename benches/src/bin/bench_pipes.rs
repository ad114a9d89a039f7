//! The pipe chain ("hot potato") of libevent's `test/bench.c`.
//!
//! `bench_pipes -n N -a A -w W -r R [-t] [-s SEED] [-v]`: N socketpairs, a
//! persistent read event on each. Each round (1) deletes and re-adds every
//! read event (with `-t`, each with a random timeout of 10 s plus up to 1 s,
//! re-armed with a new random value on every event), (2) writes one byte to
//! A pairs spaced N/A apart, (3) runs non-blocking single loop iterations
//! until every byte is read. The read callback reads its byte and, while the
//! round's budget of W writes lasts, writes one byte to pair (idx+1) mod N.
//! Prints the medians of `pipes.setup`, `pipes.dispatch` and `pipes.total`.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent::{EventBase, LoopFlags, What, fdio};
use oxevent_benches::{Args, Rng, median, result};

const USAGE: &str = "usage: bench_pipes -n N -a A -w W -r R [-t] [-s SEED] [-v]";

struct State {
    count: Cell<u64>,
    writes: Cell<u64>,
    fired: Cell<u64>,
    failures: Cell<u64>,
}

fn main() {
    let args = Args::parse("nawrs", USAGE);
    let n = args.num('n', 100) as usize;
    let a = (args.num('a', 1) as usize).clamp(1, n);
    let w = args.num('w', 100);
    let rounds = args.num('r', 25).max(1);
    let timers = args.flag('t');
    let verbose = args.flag('v');
    let rng = Rc::new(RefCell::new(Rng::new(args.num('s', 1))));

    let mut base =
        EventBase::new().unwrap_or_else(|e| oxevent_benches::die(&format!("event base: {e}")));
    let mut readers: Vec<OwnedFd> = Vec::with_capacity(n);
    let mut writers: Vec<OwnedFd> = Vec::with_capacity(n);
    for _ in 0..n {
        let (r, wr) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        r.set_nonblocking(true).expect("nonblocking");
        wr.set_nonblocking(true).expect("nonblocking");
        readers.push(r.into());
        writers.push(wr.into());
    }
    // Each callback owns its read end and shares the next pair's write end.
    let writers: Vec<Rc<OwnedFd>> = writers.into_iter().map(Rc::new).collect();
    let st = Rc::new(State {
        count: Cell::new(0),
        writes: Cell::new(0),
        fired: Cell::new(0),
        failures: Cell::new(0),
    });
    let random_timeout = |rng: &RefCell<Rng>| {
        Duration::from_secs(10) + Duration::from_micros(rng.borrow_mut().range(0, 999_999))
    };

    let mut events = Vec::with_capacity(n);
    for (idx, reader) in readers.into_iter().enumerate() {
        let (st, rng) = (st.clone(), rng.clone());
        // As bench.c: wrap without a division.
        let next = writers[if idx + 1 == n { 0 } else { idx + 1 }].clone();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        let ev = base
            .event_new(fd, What::READ | What::PERSIST, move |base, ev, _| {
                let mut ch = [0u8; 1];
                match fdio::recv(reader.as_fd(), &mut ch) {
                    Ok(k) => st.count.set(st.count.get() + k as u64),
                    Err(_) => st.failures.set(st.failures.get() + 1),
                }
                if timers {
                    let t = random_timeout(&rng);
                    let _ = base.add(ev, Some(t));
                }
                if st.writes.get() > 0 {
                    if !matches!(fdio::send(next.as_fd(), b"e"), Ok(1)) {
                        st.failures.set(st.failures.get() + 1);
                    }
                    st.writes.set(st.writes.get() - 1);
                    st.fired.set(st.fired.get() + 1);
                }
            })
            .expect("event_new");
        events.push(ev);
    }

    let (mut setup, mut dispatch, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_round = 0;
    let space = n / a;
    for round in 0..rounds {
        let t0 = Instant::now();
        for &ev in &events {
            base.del(ev).expect("del");
            let t = if timers {
                Some(random_timeout(&rng))
            } else {
                None
            };
            base.add(ev, t).expect("add");
        }
        // As in the C versions, step 1 ends here; the coalesced interest
        // changes reach the backend in the first iteration of step 3.
        let t1 = Instant::now();
        st.fired.set(0);
        for i in 0..a {
            let _ = fdio::send(writers[i * space].as_fd(), b"e");
            st.fired.set(st.fired.get() + 1);
        }
        st.count.set(0);
        st.writes.set(w);
        let t2 = Instant::now();
        let mut iters = 0u64;
        while st.count.get() != st.fired.get() {
            base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK)
                .expect("loop");
            iters += 1;
        }
        let t3 = Instant::now();
        per_round = st.count.get();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        setup.push(us(t1 - t0));
        dispatch.push(us(t3 - t2));
        total.push(us(t3 - t0));
        if verbose {
            eprintln!(
                "round {round}: setup {:.1} us, dispatch {:.1} us, {} reads, {iters} iterations, {} failures",
                us(t1 - t0),
                us(t3 - t2),
                per_round,
                st.failures.get()
            );
        }
    }
    let cfg = format!("n{n}_a{a}_w{w}_t{}", u8::from(timers));
    let extra = format!("events={per_round} method={}", base.method());
    result(
        "pipes.setup",
        "oxevent",
        &cfg,
        median(&mut setup),
        "us_per_round",
        &extra,
    );
    result(
        "pipes.dispatch",
        "oxevent",
        &cfg,
        median(&mut dispatch),
        "us_per_round",
        &extra,
    );
    result(
        "pipes.total",
        "oxevent",
        &cfg,
        median(&mut total),
        "us_per_round",
        &extra,
    );
    if st.failures.get() > 0 {
        oxevent_benches::die(&format!("{} I/O failures", st.failures.get()));
    }
}
