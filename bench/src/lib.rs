//! Shared helpers of the benchmark binaries (being written).
