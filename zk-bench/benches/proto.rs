//! Micro-benchmarks of zk-proto (issue 7): encoding a getData request, decoding a 1 KiB
//! getData reply (zero-copy checked), decoding a getChildren2 reply of 1,000 children, and
//! pushing 10 MiB of mixed replies through a connected `Session` (MiB/s, allocations per reply).
//!
//! `cargo bench -p zk-bench --bench proto`

// The workspace denies unsafe code. Counting allocations needs a `GlobalAlloc` wrapper, and
// implementing that trait is `unsafe impl` by definition; it only forwards to the system
// allocator and bumps a counter. This file is the only place in zk-bench that allows it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use zk_proto::frame::write_frame;
use zk_proto::jute::{Encode, Reader};
use zk_proto::{
    Action, Config, ConnectResponse, Create2Response, CreateRequest, ErrorCode, Event,
    GetChildren2Response, GetDataResponse, OpCode, PathWatchRequest, ReplyHeader, Request,
    RequestHeader, Response, Session, SetDataRequest, Stat, StatResponse,
};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0001,
        mzxid: 0x1_0000_0002,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 3,
        data_length: 1024,
        pzxid: 0x1_0000_0001,
        ..Stat::default()
    }
}

fn body(resp: &Response) -> Bytes {
    let mut b = BytesMut::new();
    resp.encode_body(&mut b);
    b.freeze()
}

fn get_data_reply(len: usize) -> Response {
    Response::GetData(GetDataResponse {
        data: Some(Bytes::from(vec![7u8; len])),
        stat: stat(),
    })
}

fn children_reply(n: usize) -> Response {
    Response::GetChildren2(GetChildren2Response {
        children: (0..n).map(|i| format!("child-{i:06}")).collect(),
        stat: stat(),
    })
}

fn bench_codec(c: &mut Criterion) {
    let req = Request::GetData(PathWatchRequest {
        path: "/bench/some/node".into(),
        watch: true,
    });
    let mut buf = BytesMut::with_capacity(256);
    c.bench_function("encode getData request", |b| {
        b.iter(|| {
            buf.clear();
            write_frame(&mut buf, |w| {
                RequestHeader {
                    xid: 42,
                    op: req.opcode(),
                }
                .encode(w);
                black_box(&req).encode_body(w);
            });
            black_box(buf.len())
        })
    });

    // Decoding a 1 KiB getData reply: the data must be a slice of the input buffer.
    let input = body(&get_data_reply(1024));
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    match Response::decode_body(OpCode::GetData, &mut Reader::new(input.clone())) {
        Ok(Response::GetData(d)) => {
            let data = d.data.as_deref().unwrap_or_default();
            let p = data.as_ptr() as usize;
            assert!(
                data.len() == 1024 && range.contains(&p) && range.contains(&(p + 1023)),
                "getData decode copied the payload"
            );
            println!(
                "decode getData 1 KiB: zero-copy verified (data points into the input buffer)"
            );
        }
        other => panic!("unexpected decode: {other:?}"),
    }
    let before = allocs();
    for _ in 0..1000 {
        black_box(Response::decode_body(
            OpCode::GetData,
            &mut Reader::new(input.clone()),
        ))
        .ok();
    }
    println!(
        "decode getData 1 KiB: {:.2} allocations per decode",
        (allocs() - before) as f64 / 1000.0
    );
    c.bench_function("decode getData reply 1 KiB", |b| {
        b.iter(|| {
            let r = Response::decode_body(OpCode::GetData, &mut Reader::new(input.clone()));
            black_box(r).ok()
        })
    });

    let input = body(&children_reply(1000));
    let mut g = c.benchmark_group("decode getChildren2 reply");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 children", |b| {
        b.iter_batched(
            || input.clone(),
            |input| {
                black_box(Response::decode_body(
                    OpCode::GetChildren2,
                    &mut Reader::new(input),
                ))
                .ok()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

// ------------------------------------------------------------------ session throughput

const CONN_CHUNK: usize = 64 * 1024;
const TARGET: usize = 10 << 20;

/// A session connected by hand: Connect action, handle_connected, the ConnectResponse fed in.
fn connected_session() -> (Session, zk_proto::ConnId) {
    let config = Config::from_connect_string("127.0.0.1:2181").expect("config");
    let mut s = Session::new(config, Instant::now());
    s.handle_timeout(Instant::now());
    let conn = loop {
        match s.poll_action() {
            Some(Action::Connect { conn, .. }) => break conn,
            Some(_) => {}
            None => panic!("the session asked for no connection"),
        }
    };
    s.handle_connected(conn, Instant::now());
    while s.poll_transmit(Instant::now()).is_some() {}
    let mut frame = BytesMut::new();
    write_frame(&mut frame, |b| {
        ConnectResponse {
            protocol_version: 0,
            timeout: 10_000,
            session_id: 0x0100_0000_0000_0001,
            passwd: Bytes::from_static(&[1u8; 16]),
            read_only: Some(false),
        }
        .encode(b)
    });
    s.handle_input(conn, &frame, Instant::now());
    while s.poll_event().is_some() {}
    while s.poll_transmit(Instant::now()).is_some() {}
    assert!(
        s.state().is_connected(),
        "handshake failed: {:?}",
        s.state()
    );
    (s, conn)
}

/// The mix: 1 KiB getData, exists, getChildren2 of 10, create2, setData, 100-byte getData.
fn mixed_request(i: usize) -> Request {
    let pw = |p: &str| PathWatchRequest {
        path: p.into(),
        watch: false,
    };
    match i % 6 {
        0 => Request::GetData(pw("/bench/big")),
        1 => Request::Exists(pw("/bench/a")),
        2 => Request::GetChildren2(pw("/bench")),
        3 => Request::Create2(CreateRequest {
            path: "/bench/new".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: zk_proto::Acl::open_unsafe(),
            flags: 0,
        }),
        4 => Request::SetData(SetDataRequest {
            path: "/bench/a".into(),
            data: Some(Bytes::from_static(b"y")),
            version: -1,
        }),
        _ => Request::GetData(pw("/bench/small")),
    }
}

fn reply_for(op: i32, path_hint: usize) -> Response {
    match op {
        4 if path_hint % 6 == 0 => get_data_reply(1024),
        4 => get_data_reply(100),
        3 | 5 => Response::Stat(StatResponse { stat: stat() }),
        12 => children_reply(10),
        15 => Response::Create2(Create2Response {
            path: "/bench/new".into(),
            stat: stat(),
        }),
        _ => Response::Empty,
    }
}

/// Submits the mix until the replies to it make about 10 MiB; returns the reply stream
/// (the server's side, built from the request frames the session wrote) and the count.
fn load(s: &mut Session, start: usize) -> (Bytes, usize) {
    let mut replies = BytesMut::with_capacity(TARGET + 4096);
    let mut n = 0;
    let mut i = start;
    while replies.len() < TARGET {
        for _ in 0..1000 {
            s.submit(mixed_request(i), Instant::now()).expect("submit");
            i += 1;
        }
        let mut k = i - 1000;
        while let Some(t) = s.poll_transmit(Instant::now()) {
            let mut d = &t.data[..];
            while d.len() >= 12 {
                let len = i32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
                let xid = i32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                let op = i32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                let resp = reply_for(op, k);
                k += 1;
                write_frame(&mut replies, |b| {
                    ReplyHeader {
                        xid,
                        zxid: 0x1_0000_0000 + xid as i64,
                        err: ErrorCode::Ok,
                    }
                    .encode(b);
                    resp.encode_body(b);
                });
                n += 1;
                d = &d[4 + len..];
            }
        }
    }
    (replies.freeze(), n)
}

/// Feeds the stream in 64 KiB reads and drains the events; returns completions.
fn digest(s: &mut Session, conn: zk_proto::ConnId, replies: &Bytes) -> usize {
    let mut done = 0;
    for chunk in replies.chunks(CONN_CHUNK) {
        s.handle_input(conn, chunk, Instant::now());
        while let Some(e) = s.poll_event() {
            if let Event::Completed { result, .. } = e {
                black_box(&result);
                done += 1;
            }
        }
    }
    done
}

fn bench_session(c: &mut Criterion) {
    let (mut s, conn) = connected_session();
    let mut next = 0;

    // One pass outside criterion for the allocation count and a plain MiB/s.
    let (replies, n) = load(&mut s, next);
    next += n;
    let a0 = allocs();
    let t = Instant::now();
    let done = digest(&mut s, conn, &replies);
    let el = t.elapsed();
    let a = allocs() - a0;
    assert_eq!(done, n, "every reply completes its request");
    println!(
        "session digest: {n} mixed replies, {:.1} MiB in {:.1} ms = {:.0} MiB/s; {:.2} allocations per reply",
        replies.len() as f64 / (1 << 20) as f64,
        el.as_secs_f64() * 1e3,
        replies.len() as f64 / (1 << 20) as f64 / el.as_secs_f64(),
        a as f64 / n as f64
    );

    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Bytes(replies.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("digest 10 MiB mixed replies", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (replies, n) = load(&mut s, next);
                next += n;
                let t = Instant::now();
                let done = digest(&mut s, conn, &replies);
                total += t.elapsed();
                assert_eq!(done, n);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_codec, bench_session);
criterion_main!(benches);
