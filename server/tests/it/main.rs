//! Integration tests: a real server on ephemeral ports, real pgwire and HTTP clients.

mod pg;
mod rest;
mod restart;
mod support;
