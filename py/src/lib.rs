//! Python bindings for wsdom (being written).
