//! A million timers (libuv's `benchmark-million-timers`).
//!
//! `bench_timers -n K -m MIN_MS -M MAX_MS [-r R]`: draws K timeouts uniformly
//! in [MIN_MS, MAX_MS] before timing and creates the K timer events (the
//! allocation is outside the timed part, as the C versions pre-allocate
//! their structures), times adding them all, then one dispatch until all
//! have fired (the count is checked). Prints `timers.insert`,
//! `timers.dispatch`, `timers.dispatch_cpu` (user+sys CPU), `timers.total`
//! in ms and `timers.insert_per_timer` in ns; medians over R runs.

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::time::{Duration, Instant};

use oxevent::{EventBase, util};
use oxevent_benches::{Args, Rng, median, result};

thread_local! {
    static FIRED: Cell<usize> = const { Cell::new(0) };
}

const USAGE: &str = "usage: bench_timers -n K -m MIN_MS -M MAX_MS [-r R]";

fn main() {
    let args = Args::parse("nmMr", USAGE);
    let k = args.num('n', 1_000_000) as usize;
    let lo = args.num('m', 1);
    let hi = args.num('M', 1000).max(lo);
    let runs = args.num('r', 1).max(1);
    let (mut ins, mut disp, mut cpu, mut tot, mut per) = (vec![], vec![], vec![], vec![], vec![]);
    let mut method = "";
    for run in 0..runs {
        let mut rng = Rng::new(42 + run);
        let timeouts: Vec<Duration> = (0..k)
            .map(|_| Duration::from_millis(rng.range(lo, hi)))
            .collect();
        let mut base =
            EventBase::new().unwrap_or_else(|e| oxevent_benches::die(&format!("event base: {e}")));
        method = base.method();
        FIRED.with(|f| f.set(0));
        // The callback captures nothing (so its box allocates nothing),
        // like the C versions' callbacks that bump a global counter.
        let events: Vec<_> = (0..k)
            .map(|_| base.timer_new(|_, _, _| FIRED.with(|f| f.set(f.get() + 1))))
            .collect();
        let iters = std::rc::Rc::new(Cell::new(0u64));
        if std::env::var_os("OXEVENT_BENCH_ITERS").is_some() {
            let it = iters.clone();
            base.watch_prepare(move |_, _| it.set(it.get() + 1));
        }
        let t0 = Instant::now();
        for (ev, t) in events.iter().zip(&timeouts) {
            base.add(*ev, Some(*t)).expect("add");
        }
        let t1 = Instant::now();
        let c0 = util::process_cpu_time().expect("cpu time");
        base.dispatch().expect("dispatch");
        let c1 = util::process_cpu_time().expect("cpu time");
        let t2 = Instant::now();
        assert_eq!(FIRED.with(Cell::get), k, "every timer fired once");
        if iters.get() > 0 {
            eprintln!("loop iterations: {}", iters.get());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        ins.push(ms(t1 - t0));
        disp.push(ms(t2 - t1));
        cpu.push(ms(c1 - c0));
        tot.push(ms(t2 - t0));
        per.push((t1 - t0).as_secs_f64() * 1e9 / k as f64);
    }
    let cfg = format!("n{k}_ms{lo}-{hi}");
    let extra = format!("method={method}");
    result(
        "timers.insert",
        "oxevent",
        &cfg,
        median(&mut ins),
        "ms",
        &extra,
    );
    result(
        "timers.dispatch",
        "oxevent",
        &cfg,
        median(&mut disp),
        "ms",
        &extra,
    );
    result(
        "timers.dispatch_cpu",
        "oxevent",
        &cfg,
        median(&mut cpu),
        "ms",
        &extra,
    );
    result(
        "timers.total",
        "oxevent",
        &cfg,
        median(&mut tot),
        "ms",
        &extra,
    );
    result(
        "timers.insert_per_timer",
        "oxevent",
        &cfg,
        median(&mut per),
        "ns",
        &extra,
    );
}
