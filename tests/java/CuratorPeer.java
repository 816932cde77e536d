// A line-driven Apache Curator 5 process for the interop tests (tests/src/curator.rs
// compiles and starts it). Each stdin line is `<id> <command> <args...>` (arguments
// have no spaces; `-` stands for an empty one); a command prefixed `bg:` runs on a
// thread of its own. Each answers `ok <id> <text>` or `err <id> <exception>`.
// Objects (clients, locks, latches...) live in one map under the names the test gives.

import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;

import org.apache.curator.RetryPolicy;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessLock;
import org.apache.curator.framework.recipes.locks.InterProcessMultiLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.locks.Revoker;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.SharedValue;
import org.apache.curator.framework.recipes.shared.SharedValueListener;
import org.apache.curator.framework.recipes.shared.SharedValueReader;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.framework.state.ConnectionStateErrorPolicy;
import org.apache.curator.framework.state.SessionConnectionStateErrorPolicy;
import org.apache.curator.framework.state.StandardConnectionStateErrorPolicy;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.*;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;

public class CuratorPeer {
    static final Map<String, Object> objs = new ConcurrentHashMap<>();
    static final Object out = new Object();
    static String hosts;
    /// Time origin of the `ms` printed by the connection-state rules' events (`mark`).
    static volatile long mark = System.nanoTime();

    static long sinceMark() {
        return (System.nanoTime() - mark) / 1_000_000;
    }

    static void emit(String s) {
        synchronized (out) {
            System.out.println(s);
            System.out.flush();
        }
    }

    static String arg(String[] a, int i) {
        return a[i].equals("-") ? "" : a[i];
    }

    @SuppressWarnings("unchecked")
    static <T> T obj(String name) {
        Object o = objs.get(name);
        if (o == null) throw new IllegalArgumentException("no object " + name);
        return (T) o;
    }

    static final Map<String, Boolean> leading = new ConcurrentHashMap<>();
    static final Map<String, ExecutorService> owners = new ConcurrentHashMap<>();

    static ExecutorService owner(String name) {
        return owners.computeIfAbsent(name, n -> Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        }));
    }

    static CuratorFramework client(String name) {
        return obj(name);
    }

    public static void main(String[] argv) throws Exception {
        hosts = argv[0];
        BufferedReaderLoop(new java.io.BufferedReader(new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8)));
    }

    static void BufferedReaderLoop(java.io.BufferedReader in) throws Exception {
        emit("ready");
        ExecutorService bg = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] parts = line.split(" ");
            String id = parts[0];
            String cmd = parts[1];
            String[] a = Arrays.copyOfRange(parts, 2, parts.length);
            if (cmd.equals("quit")) break;
            if (cmd.equals("acquire") || cmd.equals("release") || cmd.equals("multiAcquire")
                    || cmd.equals("multiRelease")) {
                // A Java mutex belongs to the thread that took it: each mutex
                // object's calls run on a thread of its own.
                owner(a[0]).submit(() -> run(id, cmd, a));
            } else if (cmd.startsWith("bg:")) {
                String c = cmd.substring(3);
                bg.submit(() -> run(id, c, a));
            } else {
                run(id, cmd, a);
            }
        }
        for (Object o : objs.values()) {
            if (o instanceof CuratorFramework) ((CuratorFramework) o).close();
        }
        System.exit(0);
    }

    static void run(String id, String cmd, String[] a) {
        try {
            emit("ok " + id + " " + exec(cmd, a));
        } catch (Throwable e) {
            emit("err " + id + " " + e.toString().replace('\n', ' '));
        }
    }

    static int readInt(CuratorFramework c, String path) throws Exception {
        try {
            byte[] d = c.getData().forPath(path);
            return d.length == 0 ? 0 : Integer.parseInt(new String(d, StandardCharsets.UTF_8));
        } catch (KeeperException.NoNodeException e) {
            return 0;
        }
    }

    static void writeInt(CuratorFramework c, String path, int v) throws Exception {
        byte[] d = Integer.toString(v).getBytes(StandardCharsets.UTF_8);
        try {
            c.setData().forPath(path, d);
        } catch (KeeperException.NoNodeException e) {
            c.create().creatingParentsIfNeeded().forPath(path, d);
        }
    }

    /// The critical section of the exclusion tests: a read-modify-write of an
    /// ASCII counter without a version, which loses counts unless excluded, and
    /// an ephemeral probe per holder whose count must stay within `bound`.
    static void critical(CuratorFramework c, String ctr, String probes, int bound) throws Exception {
        String me = c.create().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
                .forPath(probes + "/java-");
        int holders = c.getChildren().forPath(probes).size();
        int v = readInt(c, ctr);
        Thread.sleep(3);
        writeInt(c, ctr, v + 1);
        c.delete().forPath(me);
        if (holders > bound) throw new IllegalStateException(holders + " holders at once, bound " + bound);
    }

    /// A step that may throw (the body of a turn).
    interface Step {
        void run() throws Exception;
    }

    /// `n` turns of holding `lock`, each running `body` while held: the holder
    /// loops of the exclusion tests, for every kind of Curator lock.
    static String turns(InterProcessLock lock, int n, Step body) throws Exception {
        for (int i = 0; i < n; i++) {
            lock.acquire();
            try {
                body.run();
            } finally {
                lock.release();
            }
        }
        return "done";
    }

    /// What every Curator lock answers alike (`op`, on the lock named `a[0]`):
    /// `acquire <name> [ms]` (whether it was had within `ms`, or "true" once had
    /// without a bound), `release <name>`, and otherwise whether it is held.
    static String lockOp(String op, InterProcessLock lock, String[] a) throws Exception {
        switch (op) {
            case "acquire":
                if (a.length > 1) return Boolean.toString(lock.acquire(Long.parseLong(a[1]), TimeUnit.MILLISECONDS));
                lock.acquire();
                return "true";
            case "release":
                lock.release();
                return "released";
            default:
                return Boolean.toString(lock.isAcquiredInThisProcess());
        }
    }

    /// Drops the object named `name` (which must be a `type`) and closes it.
    static String close(String name, Class<? extends java.io.Closeable> type) throws Exception {
        type.cast(objs.remove(name)).close();
        return "closed";
    }

    /// A latch's or selector's participants in order, the leader starred: `a*,b`.
    static String participants(Collection<Participant> ps) {
        List<String> out = new ArrayList<>();
        for (Participant p : ps)
            out.add(p.getId() + (p.isLeader() ? "*" : ""));
        return String.join(",", out);
    }

    static String exec(String cmd, String[] a) throws Exception {
        switch (cmd) {
            case "client": {
                int session = a.length > 1 ? Integer.parseInt(a[1]) : 10000;
                CuratorFramework c = CuratorFrameworkFactory.builder().connectString(hosts)
                        .sessionTimeoutMs(session).connectionTimeoutMs(10000)
                        .retryPolicy(new ExponentialBackoffRetry(100, 10, 1000)).build();
                c.start();
                if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("no connection");
                objs.put(a[0], c);
                return "connected";
            }
            case "session": {
                org.apache.zookeeper.ZooKeeper z = client(a[0]).getZookeeperClient().getZooKeeper();
                return Long.toHexString(z.getSessionId()) + " " + HexFormat.of().formatHex(z.getSessionPasswd());
            }
            case "closeClient": {
                CuratorFramework c = objs.remove(a[0]) instanceof CuratorFramework cf ? cf : null;
                if (c != null) c.close();
                return "closed";
            }
            case "halt":
                Runtime.getRuntime().halt(1);
                return "";
            // ------------------------------------------------------------ raw reads
            case "getHex": {
                byte[] d = client(a[0]).getData().forPath(a[1]);
                return d == null ? "null" : HexFormat.of().formatHex(d);
            }
            case "owner": {
                org.apache.zookeeper.data.Stat st = client(a[0]).checkExists().forPath(a[1]);
                return st == null ? "none" : Long.toHexString(st.getEphemeralOwner());
            }
            case "children": {
                List<String> k = client(a[0]).getChildren().forPath(a[1]);
                Collections.sort(k);
                return String.join(",", k);
            }
            // ------------------------------------------------------------ InterProcessMutex
            case "mutex":
                objs.put(a[0], new InterProcessMutex(client(a[1]), a[2]));
                return "made";
            case "acquire":
            case "release":
            case "isHeld":
                return lockOp(cmd, (InterProcessMutex) obj(a[0]), a);
            case "revocable": {
                InterProcessMutex m = obj(a[0]);
                m.makeRevocable(lock -> owner(a[0]).submit(() -> {
                    emit("ev revoke " + a[0]);
                    try {
                        lock.release();
                    } catch (Exception e) {
                        emit("ev revoke-failed " + e);
                    }
                }));
                return "revocable";
            }
            case "revoke":
                Revoker.attemptRevoke(client(a[0]), a[1]);
                return "revoked";
            case "mutexLoop":
                // client path counter probes n
                return turns(new InterProcessMutex(client(a[0]), a[1]), Integer.parseInt(a[4]),
                        () -> critical(client(a[0]), a[2], a[3], 1));
            case "rwLoop": {
                // client path counter probes n write|read
                InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client(a[0]), a[1]);
                int n = Integer.parseInt(a[4]);
                if (a[5].equals("write")) return turns(rw.writeLock(), n, () -> critical(client(a[0]), a[2], a[3], 1));
                return turns(rw.readLock(), n, () -> {
                    String me = client(a[0]).create().creatingParentContainersIfNeeded()
                            .withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(a[3] + "/reader-");
                    Thread.sleep(3);
                    client(a[0]).delete().forPath(me);
                });
            }
            // ------------------------------------------------------------ LeaderLatch
            case "latch": {
                LeaderLatch l = new LeaderLatch(client(a[1]), a[2], arg(a, 3));
                l.start();
                objs.put(a[0], l);
                return "started";
            }
            case "isLeader":
                return Boolean.toString(((LeaderLatch) obj(a[0])).hasLeadership());
            case "awaitLeader":
                return Boolean.toString(((LeaderLatch) obj(a[0])).await(Long.parseLong(a[1]), TimeUnit.MILLISECONDS));
            case "participants":
                return participants(((LeaderLatch) obj(a[0])).getParticipants());
            case "latchClose":
                return close(a[0], LeaderLatch.class);
            // ------------------------------------------------------------ LeaderSelector
            case "selector": {
                // name client path id: auto-requeued; each term emits `ev lead <name>`,
                // holds until `abdicate <name>` (or an interrupt), then `ev unlead <name>`
                final String name = a[0];
                final java.util.concurrent.Semaphore abdicate = new java.util.concurrent.Semaphore(0);
                objs.put("abdicate:" + name, abdicate);
                LeaderSelector sel = new LeaderSelector(client(a[1]), a[2], new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework c) throws Exception {
                        leading.put(name, true);
                        emit("ev lead " + name);
                        try {
                            abdicate.acquire();
                        } finally {
                            leading.put(name, false);
                            emit("ev unlead " + name);
                        }
                    }
                });
                sel.setId(a[3]);
                sel.autoRequeue();
                sel.start();
                objs.put(name, sel);
                return "started";
            }
            case "abdicate":
                ((java.util.concurrent.Semaphore) obj("abdicate:" + a[0])).release();
                return "abdicated";
            case "selLeading":
                return Boolean.toString(leading.getOrDefault(a[0], false));
            case "selParticipants":
                return participants(((LeaderSelector) obj(a[0])).getParticipants());
            case "selInterrupt":
                ((LeaderSelector) obj(a[0])).interruptLeadership();
                return "interrupted";
            case "selClose":
                return close(a[0], LeaderSelector.class);
            // ------------------------------------------------------------ InterProcessSemaphoreMutex
            case "semMutex":
                objs.put(a[0], new InterProcessSemaphoreMutex(client(a[1]), a[2]));
                return "made";
            case "smAcquire":
            case "smRelease":
                // smAcquire name ms -> acquire, smRelease -> release
                return lockOp(cmd.substring(2).toLowerCase(Locale.ROOT), (InterProcessSemaphoreMutex) obj(a[0]), a);
            // ------------------------------------------------------------ GroupMember, PersistentNode
            case "member": {
                // name client path id payload
                GroupMember g = new GroupMember(client(a[1]), a[2], a[3], arg(a, 4).getBytes(StandardCharsets.UTF_8));
                g.start();
                objs.put(a[0], g);
                return "started";
            }
            case "members": {
                Map<String, byte[]> m = ((GroupMember) obj(a[0])).getCurrentMembers();
                List<String> out = new ArrayList<>();
                for (Map.Entry<String, byte[]> e : m.entrySet())
                    out.add(e.getKey() + "=" + new String(e.getValue(), StandardCharsets.UTF_8));
                Collections.sort(out);
                return String.join(",", out);
            }
            case "memberClose":
                return close(a[0], GroupMember.class);
            case "pnode": {
                // name client path mode data
                PersistentNode n = new PersistentNode(client(a[1]), CreateMode.valueOf(a[3]), false, a[2],
                        arg(a, 4).getBytes(StandardCharsets.UTF_8));
                n.start();
                if (!n.waitForInitialCreate(10, TimeUnit.SECONDS)) throw new IllegalStateException("not created");
                objs.put(a[0], n);
                return n.getActualPath();
            }
            case "ttlnode": {
                // name client path ttlMs data
                org.apache.curator.framework.recipes.nodes.PersistentTtlNode n =
                        new org.apache.curator.framework.recipes.nodes.PersistentTtlNode(client(a[1]), a[2],
                                Long.parseLong(a[3]), arg(a, 4).getBytes(StandardCharsets.UTF_8));
                n.start();
                if (!n.waitForInitialCreate(10, TimeUnit.SECONDS)) throw new IllegalStateException("not created");
                objs.put(a[0], n);
                return "started";
            }
            case "ttlClose":
                return close(a[0], org.apache.curator.framework.recipes.nodes.PersistentTtlNode.class);
            case "pnodeClose":
                return close(a[0], PersistentNode.class);
            // ------------------------------------------------------------ barriers
            case "barrier":
                objs.put(a[0], new DistributedBarrier(client(a[1]), a[2]));
                return "made";
            case "barrierSet":
                ((DistributedBarrier) obj(a[0])).setBarrier();
                return "set";
            case "barrierRemove":
                ((DistributedBarrier) obj(a[0])).removeBarrier();
                return "removed";
            case "barrierWait":
                return Boolean.toString(((DistributedBarrier) obj(a[0])).waitOnBarrier(Long.parseLong(a[1]), TimeUnit.MILLISECONDS));
            case "dbarrier":
                objs.put(a[0], new DistributedDoubleBarrier(client(a[1]), a[2], Integer.parseInt(a[3])));
                return "made";
            case "dbEnter":
                return Boolean.toString(((DistributedDoubleBarrier) obj(a[0])).enter(Long.parseLong(a[1]), TimeUnit.MILLISECONDS));
            case "dbLeave":
                return Boolean.toString(((DistributedDoubleBarrier) obj(a[0])).leave(Long.parseLong(a[1]), TimeUnit.MILLISECONDS));
            // ------------------------------------------------------------ InterProcessSemaphoreV2
            case "semLoop": {
                // client path leases counter-unused probes n
                InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(client(a[0]), a[1], Integer.parseInt(a[2]));
                int n = Integer.parseInt(a[4]);
                int bound = Integer.parseInt(a[2]);
                for (int i = 0; i < n; i++) {
                    Lease l = s.acquire();
                    try {
                        String me = client(a[0]).create().creatingParentContainersIfNeeded()
                                .withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(a[3] + "/java-");
                        int holders = client(a[0]).getChildren().forPath(a[3]).size();
                        Thread.sleep(5);
                        client(a[0]).delete().forPath(me);
                        if (holders > bound) throw new IllegalStateException(holders + " holders, bound " + bound);
                    } finally {
                        s.returnLease(l);
                    }
                }
                return "done";
            }
            case "semaphore":
                objs.put(a[0], new InterProcessSemaphoreV2(client(a[1]), a[2], Integer.parseInt(a[3])));
                return "made";
            case "semAcquire": {
                InterProcessSemaphoreV2 s = obj(a[0]);
                Lease l = s.acquire(Long.parseLong(a[2]), TimeUnit.MILLISECONDS);
                if (l == null) return "false";
                objs.put(a[1], l);
                return "true";
            }
            case "semReturn": {
                Lease l = (Lease) objs.remove(a[0]);
                l.close();
                return "returned";
            }
            // ------------------------------------------------------------ SharedCount
            case "count": {
                SharedCount s = new SharedCount(client(a[1]), a[2], Integer.parseInt(a[3]));
                s.start();
                objs.put(a[0], s);
                return "started";
            }
            case "countGet":
                return Integer.toString(((SharedCount) obj(a[0])).getCount());
            case "countAdd": {
                SharedCount s = obj(a[0]);
                int delta = Integer.parseInt(a[1]);
                int times = Integer.parseInt(a[2]);
                for (int i = 0; i < times; i++) {
                    while (true) {
                        VersionedValue<Integer> v = s.getVersionedValue();
                        if (s.trySetCount(v, v.getValue() + delta)) break;
                    }
                }
                return "done";
            }
            case "countClose":
                return close(a[0], SharedCount.class);
            case "countListen": {
                // name: each change emits `ev count <name> <n>`
                final String name = a[0];
                ((SharedCount) obj(name)).addListener(new SharedCountListener() {
                    @Override
                    public void countHasChanged(SharedCountReader r, int n) {
                        emit("ev count " + name + " " + n);
                    }

                    @Override
                    public void stateChanged(CuratorFramework c, ConnectionState s) {
                    }
                });
                return "listening";
            }
            case "countSet":
                ((SharedCount) obj(a[0])).setCount(Integer.parseInt(a[1]));
                return "set";
            // ------------------------------------------------------------ SharedValue
            case "sv": {
                // name client path seedHex: started; each change emits `ev sv <name> <hex>`
                final String name = a[0];
                SharedValue v = new SharedValue(client(a[1]), a[2], HexFormat.of().parseHex(arg(a, 3)));
                v.getListenable().addListener(new SharedValueListener() {
                    @Override
                    public void valueHasChanged(SharedValueReader r, byte[] value) {
                        emit("ev sv " + name + " " + hex(value));
                    }

                    @Override
                    public void stateChanged(CuratorFramework c, ConnectionState s) {
                    }
                });
                v.start();
                objs.put(name, v);
                return "started";
            }
            case "svGet":
                return hex(((SharedValue) obj(a[0])).getValue());
            case "svVersioned": {
                // name key: keeps the versioned value under `key`
                VersionedValue<byte[]> v = ((SharedValue) obj(a[0])).getVersionedValue();
                objs.put(a[1], v);
                return v.getVersion() + " " + hex(v.getValue());
            }
            case "svSet":
                ((SharedValue) obj(a[0])).setValue(HexFormat.of().parseHex(arg(a, 1)));
                return "set";
            case "svTrySet": {
                // name key hex: compare-and-set against the value kept under `key`
                VersionedValue<byte[]> prev = obj(a[1]);
                return Boolean.toString(((SharedValue) obj(a[0])).trySetValue(prev, HexFormat.of().parseHex(arg(a, 2))));
            }
            case "svClose":
                return close(a[0], SharedValue.class);
            // ------------------------------------------------------------ InterProcessMultiLock
            case "multi":
                // name client path,path,...
                objs.put(a[0], new InterProcessMultiLock(client(a[1]), Arrays.asList(a[2].split(","))));
                return "made";
            case "multiAcquire":
            case "multiRelease":
            case "multiHeld":
                // multiAcquire -> acquire, multiRelease -> release, multiHeld -> held
                return lockOp(cmd.substring(5).toLowerCase(Locale.ROOT), (InterProcessMultiLock) obj(a[0]), a);
            case "multiLoop":
                // client path,path,... counter probes n
                return turns(new InterProcessMultiLock(client(a[0]), Arrays.asList(a[1].split(","))),
                        Integer.parseInt(a[4]), () -> critical(client(a[0]), a[2], a[3], 1));
            // ------------------------------------------------------------ DistributedAtomicLong
            case "along": {
                // name client path [lockPath]
                RetryPolicy r = new RetryNTimes(1000, 1);
                DistributedAtomicLong l = a.length > 3
                        ? new DistributedAtomicLong(client(a[1]), a[2], r,
                            PromotedToLock.builder().lockPath(a[3]).retryPolicy(new RetryNTimes(1000, 5))
                                    .timeout(10, TimeUnit.SECONDS).build())
                        : new DistributedAtomicLong(client(a[1]), a[2], r);
                objs.put(a[0], l);
                return "made";
            }
            case "alongAdd": {
                DistributedAtomicLong l = obj(a[0]);
                long delta = Long.parseLong(a[1]);
                int times = Integer.parseInt(a[2]);
                for (int i = 0; i < times; i++) {
                    AtomicValue<Long> v = l.add(delta);
                    if (!v.succeeded()) throw new IllegalStateException("add did not succeed");
                }
                return "done";
            }
            case "alongGet": {
                AtomicValue<Long> v = ((DistributedAtomicLong) obj(a[0])).get();
                if (!v.succeeded()) throw new IllegalStateException("get did not succeed");
                return Long.toString(v.postValue());
            }
            // ------------------------------------------------------------ discovery
            case "discoveryWatched": {
                // name client base: watchInstances(true)
                ServiceDiscovery<Map> d = ServiceDiscoveryBuilder.builder(Map.class).client(client(a[1]))
                        .basePath(a[2]).serializer(new JsonInstanceSerializer<>(Map.class)).watchInstances(true).build();
                d.start();
                objs.put(a[0], d);
                return "started";
            }
            case "discovery": {
                // name client base
                ServiceDiscovery<Map> d = ServiceDiscoveryBuilder.builder(Map.class).client(client(a[1]))
                        .basePath(a[2]).serializer(new JsonInstanceSerializer<>(Map.class)).build();
                d.start();
                objs.put(a[0], d);
                return "started";
            }
            case "register": {
                // discovery name id address port sslPort uriSpec type payloadKey payloadValue
                ServiceDiscovery<Map> d = obj(a[0]);
                ServiceInstanceBuilder<Map> b = ServiceInstance.<Map>builder().name(a[1]).id(a[2]).address(a[3]);
                if (!a[4].equals("-")) b.port(Integer.parseInt(a[4]));
                if (!a[5].equals("-")) b.sslPort(Integer.parseInt(a[5]));
                if (!a[6].equals("-")) b.uriSpec(new UriSpec(a[6]));
                b.serviceType(ServiceType.valueOf(a[7]));
                if (a.length > 10) b.registrationTimeUTC(Long.parseLong(a[10]));
                if (!a[8].equals("-")) {
                    Map<String, Object> p = new LinkedHashMap<>();
                    p.put(a[8], a[9]);
                    b.payload(p);
                }
                ServiceInstance<Map> i = b.build();
                d.registerService(i);
                objs.put("instance:" + a[2], i);
                return "registered";
            }
            case "update": {
                // discovery id port: the registered instance with a new port
                ServiceDiscovery<Map> d = obj(a[0]);
                ServiceInstance<Map> o = obj("instance:" + a[1]);
                ServiceInstance<Map> i = new ServiceInstance<>(o.getName(), o.getId(), o.getAddress(),
                        Integer.parseInt(a[2]), o.getSslPort(), o.getPayload(), o.getRegistrationTimeUTC(),
                        o.getServiceType(), o.getUriSpec(), o.isEnabled());
                d.updateService(i);
                objs.put("instance:" + a[1], i);
                return "updated";
            }
            case "cache": {
                // name discovery service: a started ServiceCache
                ServiceCache<Map> c = ((ServiceDiscovery<Map>) obj(a[1])).serviceCacheBuilder().name(a[2]).build();
                c.start();
                objs.put(a[0], c);
                return "started";
            }
            case "cacheInstances": {
                List<String> out = new ArrayList<>();
                for (ServiceInstance<Map> i : ((ServiceCache<Map>) obj(a[0])).getInstances()) out.add(describe(i));
                Collections.sort(out);
                return String.join(";", out);
            }
            case "instance": {
                // discovery name id
                ServiceInstance<Map> i = ((ServiceDiscovery<Map>) obj(a[0])).queryForInstance(a[1], a[2]);
                return i == null ? "none" : describe(i);
            }
            case "provider": {
                // name discovery service roundrobin|random|sticky
                ProviderStrategy<Map> st = a[3].equals("random") ? new org.apache.curator.x.discovery.strategies.RandomStrategy<>()
                        : a[3].equals("sticky") ? new org.apache.curator.x.discovery.strategies.StickyStrategy<>(new org.apache.curator.x.discovery.strategies.RoundRobinStrategy<>())
                        : new org.apache.curator.x.discovery.strategies.RoundRobinStrategy<>();
                ServiceProvider<Map> p = ((ServiceDiscovery<Map>) obj(a[1])).serviceProviderBuilder().serviceName(a[2])
                        .providerStrategy(st).build();
                p.start();
                objs.put(a[0], p);
                return "started";
            }
            case "providerGet": {
                ServiceInstance<Map> i = ((ServiceProvider<Map>) obj(a[0])).getInstance();
                return i == null ? "none" : i.getId();
            }
            case "unregister": {
                ServiceDiscovery<Map> d = obj(a[0]);
                d.unregisterService(obj("instance:" + a[1]));
                return "unregistered";
            }
            case "names":
                return String.join(",", new TreeSet<>(((ServiceDiscovery<Map>) obj(a[0])).queryForNames()));
            case "instances": {
                // discovery name: one instance per `;`, fields as key=value|...
                List<String> out = new ArrayList<>();
                for (ServiceInstance<Map> i : ((ServiceDiscovery<Map>) obj(a[0])).queryForInstances(a[1]))
                    out.add(describe(i));
                Collections.sort(out);
                return String.join(";", out);
            }
            // ------------------------------------------------------------ connection-state rules
            case "mark":
                // Resets the origin of the `ms` in the events below.
                mark = System.nanoTime();
                return "marked";
            case "rulesClient": {
                // name sessionMs standard|session percent: a client with that error policy and
                // simulatedSessionExpirationPercent; each state change emits
                // `ev state <name> <STATE> <ms since mark>`. Answers the negotiated timeout.
                ConnectionStateErrorPolicy policy = a[2].equals("session")
                        ? new SessionConnectionStateErrorPolicy() : new StandardConnectionStateErrorPolicy();
                String name = a[0];
                CuratorFramework c = CuratorFrameworkFactory.builder().connectString(hosts)
                        .sessionTimeoutMs(Integer.parseInt(a[1])).connectionTimeoutMs(10000)
                        .connectionStateErrorPolicy(policy)
                        .simulatedSessionExpirationPercent(Integer.parseInt(a[3]))
                        .retryPolicy(new ExponentialBackoffRetry(100, 10, 1000)).build();
                c.getConnectionStateListenable().addListener(
                        (cf, st) -> emit("ev state " + name + " " + st + " " + sinceMark()));
                c.start();
                if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("no connection");
                objs.put(name, c);
                return Integer.toString(c.getZookeeperClient().getLastNegotiatedSessionTimeoutMs());
            }
            case "watchedLatch": {
                // name client path id: a started LeaderLatch whose listener emits
                // `ev isLeader <name> <ms>` and `ev notLeader <name> <ms>` (ms since mark).
                LeaderLatch l = new LeaderLatch(client(a[1]), a[2], arg(a, 3));
                String name = a[0];
                l.addListener(new LeaderLatchListener() {
                    public void isLeader() {
                        emit("ev isLeader " + name + " " + sinceMark());
                    }

                    public void notLeader() {
                        emit("ev notLeader " + name + " " + sinceMark());
                    }
                });
                l.start();
                objs.put(name, l);
                return "started";
            }
            default:
                throw new IllegalArgumentException("unknown command " + cmd);
        }
    }

    /// Bytes as lowercase hex, `-` when empty.
    static String hex(byte[] b) {
        return b == null || b.length == 0 ? "-" : HexFormat.of().formatHex(b);
    }

    /// A uri spec's parts: `value` for literals, `{value}` for fields.
    static String parts(UriSpec u) {
        StringBuilder b = new StringBuilder();
        for (UriSpec.Part p : u.getParts()) b.append(p.isVariable() ? "{" + p.getValue() + "}" : p.getValue());
        return b.toString();
    }

    /// Every field of an instance, as the tests compare them.
    static String describe(ServiceInstance<Map> i) {
        return "name=" + i.getName() + "|id=" + i.getId() + "|address=" + i.getAddress()
                + "|port=" + i.getPort() + "|sslPort=" + i.getSslPort() + "|payload=" + i.getPayload()
                + "|registrationTimeUTC=" + i.getRegistrationTimeUTC() + "|serviceType=" + i.getServiceType()
                + "|uriSpec=" + (i.getUriSpec() == null ? "null" : parts(i.getUriSpec()) + "=" + i.getUriSpec().build(i))
                + "|enabled=" + i.isEnabled();
    }
}
