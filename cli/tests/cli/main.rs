//! The `skewless` binary's end-to-end tests, one test binary: each module runs the real binary
//! as a process against real files and servers. One binary rather than one per file, because
//! each links the whole runtime (hundreds of MB in a debug build) and CI's disk and time are
//! better spent once.

mod commands;
mod common;
mod online_shared;
mod pipes;
mod s3;
mod serve;
mod stream;
