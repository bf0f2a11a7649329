//! Domain types. No I/O.
