//! Renders cloud-init user-data for one runner VM. Pure: no I/O.
