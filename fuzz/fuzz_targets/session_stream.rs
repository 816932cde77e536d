#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zk_proto::fuzzing::session_stream(
    data,
    std::time::Instant::now()
));
