//! The crate's integration tests, one module each, built as one binary: each test binary
//! compiled the library's generic kernels for its own use again, and building them was most of
//! a CI run. (The allocator tests, `memory.rs` and `keeping_allocator.rs`, stay binaries of
//! their own: each installs a global allocator.)

mod common;

mod agreement;
mod channels_last_rows;
mod depthwise;
mod fft_paths;
mod im2col_cnn;
mod integers_and_errors;
mod padded_batches;
mod scipy_fixtures;
mod seed;
mod winograd;
