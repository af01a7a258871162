//! Integration tests: the real `banter` binary, driven over real sockets on
//! 127.0.0.1. One test binary (one link step) with a module per concern.

mod access;
mod backpressure;
mod cli;
mod cluster;
mod flood;
mod help_bot;
mod history;
mod http;
mod input;
mod keepalive;
mod names;
mod neighbours;
mod plain_text;
mod presence;
mod rfc6455;
mod services;
mod shutdown;
mod support;
mod websocket;
