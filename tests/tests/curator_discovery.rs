//! zk-recipes' Curator service discovery against Apache Curator 5.4's
//! curator-x-discovery (a JVM driven through `zk_tests::curator`), on a real
//! ZooKeeper 3.8 server, for every adapter: an instance registered from Rust is
//! found by Java's `ServiceDiscovery` (queries and a `ServiceCache`) with every
//! field equal, through updates and unregistration, in every service type's
//! node mode; an instance Java registers is read by Rust field for field, and
//! its bytes are exactly what Rust writes for it; the Rust cache follows
//! Java's updates and drops the instance when the JVM dies; a Rust instance
//! survives a reconnection untouched and is registered again after its session
//! expires; the providers' strategies pick as Curator's do. With
//! `watchInstances` (Java) / `watch_instances` (Rust), an instance rewritten
//! by another process is registered again as rewritten after a new session;
//! without it, as first registered (both sides alike).

mod recipes_common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use recipes_common::{eventually, fresh, run, unique, Adapter, WAIT};
use serde_json::json;
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    DiscoveryOptions, ProviderStrategy, ServiceCache, ServiceDiscovery, ServiceInstance,
    ServiceProvider, ServiceType, UriSpec,
};

/// Runs a discovery call on the adapter: the async form on its executor, or
/// the `_blocking` form for zk-blocking.
macro_rules! call {
    ($z:ty, $d:ident . $f:ident ( $($a:expr),* )) => {
        if <$z as Zk>::NAME == "blocking" {
            paste_blocking!($d, $f, $($a),*)
        } else {
            <$z as Adapter>::exec($d.$f($($a),*))
        }
    };
}

macro_rules! paste_blocking {
    ($d:ident, register, $($a:expr),*) => { $d.register_blocking($($a),*) };
    ($d:ident, update, $($a:expr),*) => { $d.update_blocking($($a),*) };
    ($d:ident, unregister, $($a:expr),*) => { $d.unregister_blocking($($a),*) };
    ($d:ident, query_for_names, ) => { $d.query_for_names_blocking() };
    ($d:ident, query_for_instances, $($a:expr),*) => { $d.query_for_instances_blocking($($a),*) };
    ($d:ident, query_for_instance, $($a:expr),*) => { $d.query_for_instance_blocking($($a),*) };
}

/// An instance as the Java peer's `describe` prints it (Java's getters).
fn describe(i: &ServiceInstance) -> String {
    let opt = |v: Option<i32>| v.map_or("null".to_string(), |p| p.to_string());
    let payload = match i.payload_map() {
        Some(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "null".into(),
    };
    let uri = match &i.uri_spec {
        None => "null".to_string(),
        Some(u) => {
            let parts: String = u
                .parts
                .iter()
                .map(|p| {
                    if p.variable {
                        format!("{{{}}}", p.value)
                    } else {
                        p.value.clone()
                    }
                })
                .collect();
            format!("{parts}={}", i.build_uri().unwrap())
        }
    };
    format!(
        "name={}|id={}|address={}|port={}|sslPort={}|payload={payload}|registrationTimeUTC={}|serviceType={}|uriSpec={uri}|enabled={}",
        i.name,
        i.id,
        i.address.as_deref().unwrap_or("null"),
        opt(i.port),
        opt(i.ssl_port),
        i.registration_time_utc,
        i.service_type.java_name(),
        i.enabled
    )
}

fn rust_instance(id: &str) -> ServiceInstance {
    let mut i = ServiceInstance::new("api")
        .id(id)
        .address("10.1.2.3")
        .port(8080)
        .ssl_port(8443)
        .uri_spec(UriSpec::parse("{scheme}://{address}:{port}/x").unwrap())
        .map_payload([("k", json!("v")), ("zone", json!("eu-1"))]);
    i.registration_time_utc = 1_700_000_000_123;
    i
}

/// Rust registers; Java's queries and cache see every field; updates and
/// unregistration reach Java; each service type gets its node mode.
fn java_sees_rust<Z: Adapter>() {
    let (cs, base, zk) = fresh::<Z>("curator-disc");
    let mut java = Curator::start(&cs);
    java.ok(&format!("discovery d c {base}"));
    java.ok("cache jc d api");
    let d = ServiceDiscovery::new(zk.as_async(), &base).unwrap();
    d.start();
    let i = rust_instance("rust-1");
    let path = call!(Z, d.register(&i)).unwrap();
    assert_eq!(path, format!("{base}/api/rust-1"));
    let stat = zk.exists(&path).unwrap().unwrap();
    assert_eq!(
        stat.ephemeral_owner,
        zk.session().unwrap().id,
        "DYNAMIC is ephemeral"
    );
    assert_eq!(
        String::from_utf8(zk.get_data(&path).unwrap().0.to_vec()).unwrap(),
        r#"{"name":"api","id":"rust-1","address":"10.1.2.3","port":8080,"sslPort":8443,"payload":{"@class":"java.util.LinkedHashMap","k":"v","zone":"eu-1"},"registrationTimeUTC":1700000000123,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true},{"value":"/x","variable":false}]}}"#
    );
    let want = describe(&i);
    assert!(want.contains("uriSpec={scheme}://{address}:{port}/x=https://10.1.2.3:8080/x"));
    assert_eq!(java.ok("instances d api"), want, "Java's query");
    assert_eq!(java.ok("instance d api rust-1"), want);
    assert_eq!(java.ok("names d"), "api");
    eventually(WAIT, "Java's cache sees the instance", || {
        java.ok("cacheInstances jc") == want
    });

    let mut i2 = i.clone();
    i2.port = Some(9090);
    call!(Z, d.update(&i2)).unwrap();
    let want2 = describe(&i2);
    assert_eq!(
        java.ok("instances d api"),
        want2,
        "Java's query after the update"
    );
    eventually(WAIT, "Java's cache follows the update", || {
        java.ok("cacheInstances jc") == want2
    });

    // The other types: STATIC is persistent, DYNAMIC_SEQUENTIAL ephemeral
    // sequential.
    let st = rust_instance("rust-static").service_type(ServiceType::Static);
    let sp = call!(Z, d.register(&st)).unwrap();
    assert_eq!(
        zk.exists(&sp).unwrap().unwrap().ephemeral_owner,
        0,
        "STATIC is persistent"
    );
    let sq = rust_instance("rust-seq-").service_type(ServiceType::DynamicSequential);
    let qp = call!(Z, d.register(&sq)).unwrap();
    assert!(
        qp.len() == format!("{base}/api/rust-seq-").len() + 10,
        "not sequential: {qp}"
    );
    assert_eq!(
        zk.exists(&qp).unwrap().unwrap().ephemeral_owner,
        zk.session().unwrap().id
    );
    let mut all: Vec<String> = [&i2, &st, &sq].iter().map(|i| describe(i)).collect();
    all.sort();
    assert_eq!(java.ok("instances d api"), all.join(";"));
    let mut names = call!(Z, d.query_for_instances("api")).unwrap();
    names.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(names, vec![i2.clone(), sq.clone(), st.clone()]);

    for x in [&i2, &st, &sq] {
        call!(Z, d.unregister(x)).unwrap();
    }
    assert_eq!(
        java.ok("instances d api"),
        "",
        "unregistered, still seen by Java"
    );
    eventually(WAIT, "Java's cache drops the instances", || {
        java.ok("cacheInstances jc").is_empty()
    });
    Z::exec(d.close());
    zk.close().unwrap();
}

/// Java registers; Rust reads every field, writes the same bytes for it, and
/// its cache follows Java's update and the JVM's death.
fn rust_sees_java<Z: Adapter>() {
    let (cs, base, zk) = fresh::<Z>("curator-disc-j");
    let mut java = Curator::bare(&cs);
    java.ok("client c 4000");
    java.ok(&format!("discovery d c {base}"));
    let d = ServiceDiscovery::new(zk.as_async(), &base).unwrap();
    let mut cache = ServiceCache::new(&d, "api").unwrap();
    cache.wait_initialized(Some(WAIT)).unwrap();
    java.ok(
        "register d api java-1 10.9.8.7 81 - {scheme}://{address}:{port} DYNAMIC k v 1700000000456",
    );
    let raw = zk
        .get_data(&format!("{base}/api/java-1"))
        .unwrap()
        .0
        .to_vec();
    println!("Java wrote: {}", String::from_utf8_lossy(&raw));
    let got = ServiceInstance::from_json(&raw).unwrap();
    assert_eq!(
        String::from_utf8(got.to_json()).unwrap(),
        String::from_utf8(raw.clone()).unwrap(),
        "Rust writes other bytes for Java's instance"
    );
    assert_eq!(
        (got.name.as_str(), got.id.as_str(), got.address.as_deref()),
        ("api", "java-1", Some("10.9.8.7"))
    );
    assert_eq!((got.port, got.ssl_port), (Some(81), None));
    assert_eq!(
        got.payload_text(),
        Some(r#"{"@class":"java.util.LinkedHashMap","k":"v"}"#)
    );
    assert_eq!(got.registration_time_utc, 1_700_000_000_456);
    assert_eq!(got.service_type, ServiceType::Dynamic);
    assert_eq!(got.build_uri().as_deref(), Some("http://10.9.8.7:81"));
    assert!(got.enabled);
    assert_eq!(
        describe(&got),
        java.ok("instance d api java-1"),
        "Java's view"
    );
    assert_eq!(call!(Z, d.query_for_names()).unwrap(), ["api"]);
    assert_eq!(
        call!(Z, d.query_for_instances("api")).unwrap(),
        std::slice::from_ref(&got)
    );
    assert_eq!(
        call!(Z, d.query_for_instance("api", "java-1")).unwrap(),
        Some(got.clone())
    );
    assert_eq!(call!(Z, d.query_for_instance("api", "nope")).unwrap(), None);
    eventually(WAIT, "the Rust cache sees Java's instance", || {
        cache.instances() == [got.clone()]
    });
    java.ok("update d java-1 82");
    cache.recv_change_timeout(Some(WAIT)).unwrap();
    eventually(WAIT, "the Rust cache follows Java's update", || {
        cache.instances().first().and_then(|i| i.port) == Some(82)
    });
    // The JVM dies: once its session expires on the server, the instance is gone.
    java.kill();
    eventually(WAIT, "the Rust cache drops the dead JVM's instance", || {
        cache.instances().is_empty()
    });
    assert_eq!(call!(Z, d.query_for_instances("api")).unwrap(), []);
    drop(cache);
    zk.close().unwrap();
}

/// A reconnection leaves a registered instance's node alone (no churn for the
/// watchers); a new session after expiry registers it again, and Java sees it.
fn reregistered_after_new_session<Z: Adapter>() {
    let server = shared_server();
    let cs = server.connect_string();
    let proxy = Proxy::start(server.addr());
    let base = unique("curator-disc-re", Z::NAME);
    let zk = Z::connect_to(&proxy.connect_string());
    let mut java = Curator::start(&cs);
    java.ok(&format!("discovery d c {base}"));
    let d = ServiceDiscovery::new(zk.as_async(), &base).unwrap();
    d.start();
    let i = rust_instance("rust-re");
    let path = call!(Z, d.register(&i)).unwrap();
    let sq = rust_instance("rust-re-seq-").service_type(ServiceType::DynamicSequential);
    call!(Z, d.register(&sq)).unwrap();
    let nodes = || zk.get_children(&format!("{base}/api")).unwrap().len();
    let first = zk.exists(&path).unwrap().unwrap();
    let old = zk.session().unwrap();

    let mut states = zk.as_async().state_stream();
    proxy.cut_all();
    zk_tests::wait_reconnected(&mut states, WAIT, "after the cut");
    thread::sleep(Duration::from_millis(300));
    let after = zk.exists(&path).unwrap().unwrap();
    assert_eq!(zk.session().unwrap().id, old.id);
    assert_eq!(
        (after.czxid, after.mzxid),
        (first.czxid, first.mzxid),
        "re-created on a mere reconnection"
    );
    assert_eq!(nodes(), 2, "a reconnection registered an instance twice");

    kill_session(&cs, &old, WAIT).unwrap();
    eventually(WAIT, "a new session", || {
        zk.session().is_some_and(|s| s.id != old.id) && zk.state().is_connected()
    });
    eventually(WAIT, "registered again under the new session", || {
        zk.exists(&path)
            .ok()
            .flatten()
            .is_some_and(|s| s.ephemeral_owner == zk.session().unwrap().id)
    });
    assert_eq!(java.ok("instance d api rust-re"), describe(&i));
    eventually(WAIT, "both instances back", || nodes() == 2);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(nodes(), 2, "registered twice under the new session");
    Z::exec(d.close());
    assert!(
        zk.exists(&path).unwrap().is_none(),
        "close did not unregister"
    );
    zk.close().unwrap();
}

/// Java (one discovery watching its instances, one not) and Rust (the same)
/// register an instance each; another process rewrites all four nodes with a
/// new port; both sessions expire. The watching discoveries register their
/// instance again as rewritten, the others as first registered.
fn watched_instances<Z: Adapter>() {
    let (cs, base, zk) = fresh::<Z>("curator-disc-w");
    let admin = Z::connect_to(&cs);
    let mut java = Curator::start(&cs);
    java.ok(&format!("discoveryWatched dw c {base}"));
    java.ok(&format!("discovery dp c {base}"));
    java.ok("register dw api java-w 10.0.0.1 81 - - DYNAMIC - -");
    java.ok("register dp api java-p 10.0.0.2 82 - - DYNAMIC - -");
    let watched = ServiceDiscovery::with_options(
        zk.as_async(),
        &base,
        DiscoveryOptions {
            watch_instances: true,
            ..DiscoveryOptions::default()
        },
    )
    .unwrap();
    let plain = ServiceDiscovery::new(zk.as_async(), &base).unwrap();
    watched.start();
    plain.start();
    call!(Z, watched.register(&rust_instance("rust-w"))).unwrap();
    call!(Z, plain.register(&rust_instance("rust-p"))).unwrap();

    // Another process rewrites every instance with port 9999.
    let node = |id: &str| format!("{base}/api/{id}");
    let read =
        |id: &str| ServiceInstance::from_json(&admin.get_data(&node(id)).unwrap().0).unwrap();
    let mut first = std::collections::BTreeMap::new();
    for id in ["java-w", "java-p", "rust-w", "rust-p"] {
        let mut i = read(id);
        first.insert(id, i.port);
        i.port = Some(9999);
        admin.set_data(&node(id), i.to_json(), None).unwrap();
    }
    // The watches hear of it (no way to ask either side when they have).
    thread::sleep(Duration::from_secs(1));

    let (java_old, rust_old) = (java.session("c"), zk.session().unwrap());
    kill_session(&cs, &java_old, WAIT).unwrap();
    kill_session(&cs, &rust_old, WAIT).unwrap();
    let mut ports = std::collections::BTreeMap::new();
    for id in ["java-w", "java-p", "rust-w", "rust-p"] {
        let old = if id.starts_with("java") {
            java_old.id
        } else {
            rust_old.id
        };
        eventually(WAIT, &format!("{id} registered again"), || {
            admin
                .exists(&node(id))
                .ok()
                .flatten()
                .is_some_and(|s| s.ephemeral_owner != old)
        });
        ports.insert(id, read(id).port);
    }
    let want: std::collections::BTreeMap<&str, Option<i32>> = [
        ("java-w", Some(9999)),
        ("java-p", first["java-p"]),
        ("rust-w", Some(9999)),
        ("rust-p", first["rust-p"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(ports, want, "ports registered under the new sessions");
    let mut rw = rust_instance("rust-w");
    rw.port = Some(9999);
    assert_eq!(
        admin.get_data(&node("rust-w")).unwrap().0.as_ref(),
        rw.to_json().as_slice(),
        "Rust's rewritten instance, byte for byte"
    );
    Z::exec(watched.close());
    Z::exec(plain.close());
    zk.close().unwrap();
    admin.close().unwrap();
}

/// Round-robin, sticky and random providers over a cache holding Rust and
/// Java instances; the down-instance policy.
fn providers<Z: Adapter>() {
    let (cs, base, zk) = fresh::<Z>("curator-disc-p");
    let mut java = Curator::start(&cs);
    java.ok(&format!("discovery d c {base}"));
    let d = ServiceDiscovery::new(zk.as_async(), &base).unwrap();
    for id in ["r-a", "r-b"] {
        call!(Z, d.register(&rust_instance(id))).unwrap();
    }
    java.ok("register d api j-c 10.0.0.3 80 - - DYNAMIC - -");
    let provider = |s: ProviderStrategy| {
        let c = ServiceCache::new(&d, "api").unwrap();
        c.wait_initialized(Some(WAIT)).unwrap();
        eventually(WAIT, "three instances cached", || c.instances().len() == 3);
        ServiceProvider::new(c, s)
    };
    let ids = |p: &ServiceProvider, n: usize| -> Vec<String> {
        (0..n).map(|_| p.get_instance().unwrap().id).collect()
    };

    let rr = provider(ProviderStrategy::RoundRobin);
    assert_eq!(ids(&rr, 6), ["j-c", "r-a", "r-b", "j-c", "r-a", "r-b"]);
    let r_a = rust_instance("r-a");
    rr.note_error(&r_a);
    assert_eq!(rr.all_instances().len(), 3, "down after one error");
    rr.note_error(&r_a);
    let left: Vec<_> = rr.all_instances().into_iter().map(|i| i.id).collect();
    assert_eq!(left, ["j-c", "r-b"], "not down after two errors");

    let random = provider(ProviderStrategy::Random);
    let seen: BTreeSet<String> = ids(&random, 300).into_iter().collect();
    assert_eq!(seen, ["j-c", "r-a", "r-b"].map(String::from).into());

    // Java's round-robin provider picks Rust's instances as its own.
    java.ok("provider jp d api roundrobin");
    eventually(WAIT, "Java's provider picks all three", || {
        (0..3)
            .map(|_| java.ok("providerGet jp"))
            .collect::<BTreeSet<_>>()
            .len()
            == 3
    });
    let picks: Vec<String> = (0..6).map(|_| java.ok("providerGet jp")).collect();
    assert_eq!(picks[..3], picks[3..], "Java's round robin: {picks:?}");
    assert_eq!(
        picks.iter().cloned().collect::<BTreeSet<_>>(),
        ["j-c", "r-a", "r-b"].map(String::from).into()
    );

    let sticky = provider(ProviderStrategy::Sticky(Box::new(
        ProviderStrategy::RoundRobin,
    )));
    assert_eq!(ids(&sticky, 5), ["j-c"; 5]);
    java.ok("unregister d j-c");
    eventually(WAIT, "the sticky provider moves on", || {
        sticky.get_instance().unwrap().id != "j-c"
    });
    let next = sticky.get_instance().unwrap().id;
    assert_eq!(ids(&sticky, 5), vec![next; 5]);
    drop((rr, random, sticky));
    Z::exec(d.close());
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [java_sees_rust, rust_sees_java, reregistered_after_new_session, watched_instances, providers]);
