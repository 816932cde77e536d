//! The futures of the common calls stay small: callers keep thousands in flight,
//! move them into windows and box them (zk-blocking's `Pending`), so every byte
//! is copied per call. `create` was 2,456 bytes (an async block around
//! `create_with`'s, itself holding `ensure_path`'s inline) before it became a
//! hand-written future of 56; W3 (pipelined creates) spent ~500 instructions per
//! call moving it.

use zk_client::{Bytes, ClientBuilder, CreateMode, CreateOptions};

#[test]
fn call_futures_are_small() {
    // Built, not connected: the requests queue and the futures are never polled.
    let (zk, _shared) = ClientBuilder::new("127.0.0.1:1").build().unwrap();
    let data = Bytes::from_static(b"x");
    let sizes = [
        (
            "create",
            std::mem::size_of_val(&zk.create("/a", data.clone(), CreateMode::Persistent)),
        ),
        (
            "create_with",
            std::mem::size_of_val(&zk.create_with(
                "/a",
                data.clone(),
                &CreateOptions::mode(CreateMode::Persistent),
            )),
        ),
        ("get_data", std::mem::size_of_val(&zk.get_data("/a"))),
        (
            "set_data",
            std::mem::size_of_val(&zk.set_data("/a", data.clone(), None)),
        ),
        ("exists", std::mem::size_of_val(&zk.exists("/a"))),
        ("delete", std::mem::size_of_val(&zk.delete("/a", None))),
        ("get_children", std::mem::size_of_val(&zk.get_children("/"))),
    ];
    for (call, size) in sizes {
        assert!(size <= 128, "{call}'s future is {size} bytes");
    }
}
