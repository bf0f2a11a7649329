//! The pure planner. No I/O, no clock.
