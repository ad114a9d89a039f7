//! Shared helpers of the oxevent benchmark binaries (work in progress).
