//! Signal events: per-signal event lists and delivery from the self-pipe.
//!
//! See [`crate::sys::signal`] for how a signal reaches every base that
//! watches it.

use std::io;

use crate::base::{Event, EventBase, NIL};
use crate::flags::What;
use crate::sys::signal::{MAX_SIGNAL, SignalPipe};

/// A base's signal machinery, created with its first signal event.
#[derive(Debug)]
pub(crate) struct SignalState {
    pipe: SignalPipe,
    /// The internal read event on the pipe.
    event: Event,
    /// Slots of the pending events, per signal number.
    by_sig: Vec<Vec<u32>>,
    scratch: [u32; MAX_SIGNAL as usize + 1],
}

impl EventBase {
    fn signal_setup(&mut self) -> io::Result<()> {
        if self.sig.is_some() {
            return Ok(());
        }
        let pipe = SignalPipe::new()?;
        let ev = self.event_new(pipe.read_fd(), What::READ | What::PERSIST, |base, _, _| {
            base.deliver_signals();
        })?;
        self.mark_internal(ev);
        self.priority_set(ev, 0)?;
        if let Err(e) = self.add(ev, None) {
            let _ = self.free(ev);
            return Err(e);
        }
        self.sig = Some(SignalState {
            pipe,
            event: ev,
            by_sig: vec![Vec::new(); MAX_SIGNAL as usize + 1],
            scratch: [0; MAX_SIGNAL as usize + 1],
        });
        Ok(())
    }

    pub(crate) fn signal_insert(&mut self, idx: u32) -> io::Result<()> {
        self.signal_setup()?;
        let sig = self.d(idx).fd;
        let st = self.sig.as_mut().expect("signal state was just set up");
        if st.by_sig[sig as usize].is_empty() {
            st.pipe.watch(sig)?;
        }
        let list = &mut st.by_sig[sig as usize];
        let pos = list.len() as u32;
        list.push(idx);
        let d = self.d(idx);
        d.inserted = true;
        d.list_pos = pos;
        Ok(())
    }

    pub(crate) fn signal_remove(&mut self, idx: u32) {
        let (sig, pos) = {
            let d = self.d(idx);
            (d.fd, d.list_pos)
        };
        let Some(st) = self.sig.as_mut() else { return };
        let list = &mut st.by_sig[sig as usize];
        list.swap_remove(pos as usize);
        let moved = list.get(pos as usize).copied();
        if list.is_empty() {
            st.pipe.unwatch(sig);
        }
        if let Some(m) = moved {
            self.d(m).list_pos = pos;
        }
        let d = self.d(idx);
        d.inserted = false;
        d.list_pos = NIL;
    }

    /// Reads the pipe and queues the signal events with their counts.
    fn deliver_signals(&mut self) {
        let Some(st) = self.sig.as_mut() else { return };
        let mut counts = st.scratch;
        if !st.pipe.drain(&mut counts) {
            return;
        }
        for (sig, &n) in counts.iter().enumerate() {
            if n > 0 {
                self.signal_activate(sig as i32, n.min(u32::from(u16::MAX)) as u16);
            }
        }
    }

    pub(crate) fn signal_activate(&mut self, sig: i32, ncalls: u16) {
        let Some(st) = self.sig.as_ref() else { return };
        let Some(list) = st.by_sig.get(sig as usize) else {
            return;
        };
        for i in 0..list.len() {
            let idx = self.sig.as_ref().map_or(NIL, |s| s.by_sig[sig as usize][i]);
            self.activate_idx(idx, What::SIGNAL, ncalls);
        }
    }

    pub(crate) fn signal_reinit(&mut self) -> io::Result<()> {
        let Some(st) = self.sig.as_mut() else {
            return Ok(());
        };
        let ev = st.event;
        st.pipe.reinit()?;
        let fd = st.pipe.read_fd();
        // Move the internal event to the new read end.
        self.del(ev)?;
        self.d(ev.idx).fd = fd;
        let fs = self.fd_state(fd);
        if fs.events.is_empty() {
            fs.registered = oxevent_backend::Interest::empty();
        }
        self.add(ev, None)
    }
}
