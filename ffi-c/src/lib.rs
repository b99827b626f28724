//! C ABI for wsdom (being written).
