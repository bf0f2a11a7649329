//! Integration tests of the bootstrap renderer: golden files for every variant and a
//! behavioural run of the rendered script against stub commands in a sandbox folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod behaviour;
mod golden;
mod variants;
