//! Property tests of the codec: encode/decode round trips for every record and
//! every request and reply body, robustness and allocation bounds on arbitrary
//! bytes, frame splitting under any chunking, and path rules.
//!
//! One binary (the counting allocator in `alloc.rs` is its global allocator); the
//! strategies in `strategies.rs`; one module per property family.

mod alloc;
mod arbitrary_bytes;
mod frames;
mod null_data;
mod paths;
mod roundtrip;
mod strategies;
