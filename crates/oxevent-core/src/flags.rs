//! Flag types: event flags ([`What`]), loop flags ([`LoopFlags`]) and
//! event-count selectors ([`CountFlags`]). The bit values are libevent's.

oxevent_backend::bitflags_type! {
    /// Event flags: what an event waits for, and what fired
    /// (libevent's `EV_*` constants, with the same values).
    What: u8 {
        /// The timeout expired (`EV_TIMEOUT`).
        TIMEOUT = 0x01;
        /// The fd is readable (`EV_READ`).
        READ = 0x02;
        /// The fd is writable (`EV_WRITE`).
        WRITE = 0x04;
        /// A signal arrived (`EV_SIGNAL`); the event's number is the signal.
        SIGNAL = 0x08;
        /// Stay pending after firing; a timeout is re-armed on every
        /// activation (`EV_PERSIST`).
        PERSIST = 0x10;
        /// Edge-triggered, where the backend supports it (`EV_ET`).
        ET = 0x20;
        /// The peer closed the connection, detected without reading
        /// (`EV_CLOSED`; needs [`Features::EARLY_CLOSE`](crate::Features::EARLY_CLOSE)).
        CLOSED = 0x80;
    }
}

impl What {
    /// The I/O directions of this set (`READ | WRITE | CLOSED`).
    #[must_use]
    pub const fn io(self) -> Self {
        Self(self.0 & (Self::READ.0 | Self::WRITE.0 | Self::CLOSED.0))
    }

    /// The directions a backend reported, as event flags.
    #[inline]
    pub(crate) const fn from_ready(r: oxevent_backend::Ready) -> Self {
        // Indexed by the three `Ready` bits (READ 1, WRITE 2, CLOSED 4).
        const MAP: [u8; 8] = {
            let (r, w, c) = (What::READ.0, What::WRITE.0, What::CLOSED.0);
            [0, r, w, r | w, c, r | c, w | c, r | w | c]
        };
        Self(MAP[(r.bits() & 7) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::What;
    use oxevent_backend::Ready;

    #[test]
    fn readiness_maps_to_event_flags() {
        for bits in 0..8u8 {
            let r = Ready::from_bits_truncate(bits);
            let mut want = What::empty();
            want.set(What::READ, r.contains(Ready::READ));
            want.set(What::WRITE, r.contains(Ready::WRITE));
            want.set(What::CLOSED, r.contains(Ready::CLOSED));
            assert_eq!(What::from_ready(r), want, "{r:?}");
        }
    }
}

oxevent_backend::bitflags_type! {
    /// Flags for [`EventBase::run`](crate::EventBase::run) (libevent's `EVLOOP_*`).
    LoopFlags: u8 {
        /// Block until an event is active, run the active callbacks, then
        /// return (`EVLOOP_ONCE`).
        ONCE = 0x01;
        /// Do not block: run what is ready now, then return (`EVLOOP_NONBLOCK`).
        NONBLOCK = 0x02;
        /// Keep running even with no events pending, until a loop exit or
        /// break (`EVLOOP_NO_EXIT_ON_EMPTY`).
        NO_EXIT_ON_EMPTY = 0x04;
    }
}

oxevent_backend::bitflags_type! {
    /// Which events to count in [`EventBase::num_events`](crate::EventBase::num_events)
    /// (libevent's `EVENT_BASE_COUNT_*`).
    CountFlags: u8 {
        /// Events whose callbacks are queued to run.
        ACTIVE = 0x01;
        /// Virtual events that keep the loop alive (bufferevent internals).
        VIRTUAL = 0x02;
        /// Events that are pending (added), internal ones excluded.
        ADDED = 0x04;
    }
}
