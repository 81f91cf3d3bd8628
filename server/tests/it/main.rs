//! Integration tests: a real server on ephemeral ports, real pgwire and HTTP clients.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod pg;
mod recovery;
mod rest;
mod restart;
mod security;
mod support;
