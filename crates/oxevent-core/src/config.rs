//! Base configuration and backend selection (libevent's `event_config`).

use std::io;
use std::time::Duration;

use oxevent_backend::{BackendConfig, BackendDescriptor, Features};

use crate::clock::Clock;

/// The most priority queues a base may have (`EVENT_MAX_PRIORITIES`).
pub const MAX_PRIORITIES: u16 = 256;

/// The backends compiled in, in order of preference: epoll (Linux), then mio
/// (kqueue, IOCP, or epoll again), then poll as the fallback.
#[doc(alias = "eventops")]
#[must_use]
// Pushed one by one because each entry has its own cfg.
#[allow(clippy::vec_init_then_push)]
pub fn default_methods() -> Vec<BackendDescriptor> {
    #[allow(unused_mut)] // empty when no backend feature is on
    let mut v = Vec::new();
    #[cfg(all(
        feature = "backend-epoll",
        any(target_os = "linux", target_os = "android")
    ))]
    v.push(oxevent_epoll::DESCRIPTOR);
    #[cfg(feature = "backend-mio")]
    v.push(oxevent_mio::DESCRIPTOR);
    #[cfg(all(feature = "backend-poll", unix))]
    v.push(oxevent_poll::DESCRIPTOR);
    v
}

/// Names of the backends compiled in, in order of preference.
#[doc(alias = "event_get_supported_methods")]
#[must_use]
pub fn supported_methods() -> Vec<&'static str> {
    default_methods().iter().map(|d| d.name).collect()
}

/// Limits on how many callbacks run, or for how long, before the loop checks
/// for new I/O again (`event_config_set_max_dispatch_interval`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MaxDispatch {
    pub(crate) interval: Option<Duration>,
    pub(crate) callbacks: Option<u32>,
    pub(crate) min_priority: u16,
}

/// How to build an [`EventBase`](crate::EventBase).
///
/// ```
/// use oxevent_core::{Config, EventBase, Features};
/// let base = EventBase::with_config(
///     &Config::new().avoid_method("poll").require_features(Features::O1).priorities(4).ignore_env(true),
/// )
/// .unwrap();
/// assert_eq!(base.npriorities(), 4);
/// ```
#[derive(Clone, Debug)]
#[doc(alias = "event_config")]
pub struct Config {
    pub(crate) avoid: Vec<String>,
    pub(crate) require: Features,
    pub(crate) ignore_env: bool,
    pub(crate) no_cache_time: bool,
    pub(crate) precise_timer: bool,
    pub(crate) changelist: bool,
    pub(crate) disallow_timerfd: bool,
    pub(crate) priorities: u16,
    pub(crate) max_dispatch: MaxDispatch,
    pub(crate) clock: Option<Clock>,
    pub(crate) methods: Option<Vec<BackendDescriptor>>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults: the first compiled-in backend that works, coarse cached
    /// time, the changelist on, one priority queue.
    #[doc(alias = "event_config_new")]
    #[must_use]
    pub fn new() -> Self {
        Self {
            avoid: Vec::new(),
            require: Features::empty(),
            ignore_env: false,
            no_cache_time: false,
            precise_timer: false,
            changelist: true,
            disallow_timerfd: false,
            priorities: 1,
            max_dispatch: MaxDispatch::default(),
            clock: None,
            methods: None,
        }
    }

    /// Never use the backend called `name` (`event_config_avoid_method`).
    #[doc(alias = "event_config_avoid_method")]
    #[must_use]
    pub fn avoid_method(mut self, name: &str) -> Self {
        self.avoid.push(name.to_owned());
        self
    }

    /// Use only a backend that has all of `features`
    /// (`event_config_require_features`).
    #[doc(alias = "event_config_require_features")]
    #[must_use]
    pub fn require_features(mut self, features: Features) -> Self {
        self.require |= features;
        self
    }

    /// Ignore the `EVENT_*` environment variables (`EVENT_BASE_FLAG_IGNORE_ENV`).
    #[doc(alias = "EVENT_BASE_FLAG_IGNORE_ENV")]
    #[must_use]
    pub fn ignore_env(mut self, on: bool) -> Self {
        self.ignore_env = on;
        self
    }

    /// Read the clock afresh every time instead of once per iteration
    /// (`EVENT_BASE_FLAG_NO_CACHE_TIME`).
    #[doc(alias = "EVENT_BASE_FLAG_NO_CACHE_TIME")]
    #[must_use]
    pub fn no_cache_time(mut self, on: bool) -> Self {
        self.no_cache_time = on;
        self
    }

    /// Use the precise monotonic clock and sub-millisecond backend timeouts
    /// (`EVENT_BASE_FLAG_PRECISE_TIMER`; also env `EVENT_PRECISE_TIMER`).
    #[doc(alias = "EVENT_BASE_FLAG_PRECISE_TIMER")]
    #[must_use]
    pub fn precise_timer(mut self, on: bool) -> Self {
        self.precise_timer = on;
        self
    }

    /// Coalesce interest changes per fd until the loop next waits (on by
    /// default; `EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST` in libevent, where it
    /// is off). With it off every change reaches the backend at once.
    #[doc(alias = "EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST")]
    #[must_use]
    pub fn changelist(mut self, on: bool) -> Self {
        self.changelist = on;
        self
    }

    /// Never use a timerfd for precise timers
    /// (`EVENT_BASE_FLAG_EPOLL_DISALLOW_TIMERFD`).
    #[doc(alias = "EVENT_BASE_FLAG_EPOLL_DISALLOW_TIMERFD")]
    #[must_use]
    pub fn disallow_timerfd(mut self, on: bool) -> Self {
        self.disallow_timerfd = on;
        self
    }

    /// The number of priority queues, 1 to 256 (`event_base_priority_init`).
    /// Checked when the base is built.
    #[doc(alias = "event_base_priority_init")]
    #[must_use]
    pub fn priorities(mut self, n: u16) -> Self {
        self.priorities = n;
        self
    }

    /// After `max_callbacks` callbacks or `interval` of callbacks at a
    /// priority of `min_priority` or lower (numerically higher), check for
    /// new events before running more (`event_config_set_max_dispatch_interval`).
    #[doc(alias = "event_config_set_max_dispatch_interval")]
    #[must_use]
    pub fn max_dispatch_interval(
        mut self,
        interval: Option<Duration>,
        max_callbacks: Option<u32>,
        min_priority: u16,
    ) -> Self {
        self.max_dispatch = MaxDispatch {
            interval,
            callbacks: max_callbacks,
            min_priority,
        };
        self
    }

    /// Use `clock` for all time, e.g. [`Clock::manual`] in tests.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Replace the preference list of backends (the default is
    /// [`default_methods`]); a user's own backend can be listed here.
    #[must_use]
    pub fn methods(mut self, methods: Vec<BackendDescriptor>) -> Self {
        self.methods = Some(methods);
        self
    }

    pub(crate) fn backend_config(&self) -> BackendConfig {
        BackendConfig::new()
            .precise_timer(self.precise_timer)
            .disallow_timerfd(self.disallow_timerfd)
    }

    pub(crate) fn env_set(&self, name: &str) -> bool {
        !self.ignore_env && std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }

    /// Applies the environment (unless ignored) and validates.
    pub(crate) fn resolved(&self) -> io::Result<Self> {
        let mut c = self.clone();
        if c.env_set("EVENT_PRECISE_TIMER") {
            c.precise_timer = true;
        }
        if !(1..=MAX_PRIORITIES).contains(&c.priorities) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "priorities must be 1..={MAX_PRIORITIES}, not {}",
                    c.priorities
                ),
            ));
        }
        Ok(c)
    }

    /// Picks and builds the first usable backend, as
    /// `event_base_new_with_config` does.
    pub(crate) fn select_backend(&self) -> io::Result<Box<dyn oxevent_backend::Backend>> {
        let methods = self.methods.clone().unwrap_or_else(default_methods);
        let bcfg = self.backend_config();
        let mut last_err = None;
        for d in &methods {
            if self.avoid.iter().any(|a| a.eq_ignore_ascii_case(d.name)) {
                continue;
            }
            if !d.features.contains(self.require) {
                continue;
            }
            if self.env_set(&d.env_var()) {
                continue;
            }
            match (d.new)(&bcfg) {
                Ok(b) => {
                    if self.env_set("EVENT_SHOW_METHOD") {
                        eprintln!("[msg] oxevent using: {}", d.name);
                    }
                    return Ok(b);
                }
                Err(e) => {
                    tracing::debug!(method = d.name, error = %e, "backend failed to start");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "no event backend satisfies the configuration",
            )
        }))
    }
}
