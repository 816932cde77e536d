//! Faults on the wire: cutting or resetting a connection, injecting bytes, and
//! partitioning a member (see the module docs of [`super`]).

use bytes::Bytes;

use crate::session::ConnId;

use super::{Dir, SimNet};

impl SimNet {
    /// Lets only the next `k` bytes through in `dir` on the connection, then resets it
    /// (both sides see a close). `k == 0` resets now.
    pub fn cut(&mut self, ci: usize, conn: ConnId, dir: Dir, k: usize) {
        if k == 0 {
            self.reset((ci, conn));
            return;
        }
        self.set_cut((ci, conn), dir, k);
    }

    /// Resets the client's session connection now (both sides see a close).
    pub fn reset_session_conn(&mut self, ci: usize) {
        if let Some(conn) = self.session_conn(ci) {
            self.reset((ci, conn));
        }
    }

    /// Puts raw bytes on the wire of a connection, as if the peer had written them
    /// (after whatever is already in flight in that direction).
    pub fn inject(&mut self, ci: usize, conn: ConnId, dir: Dir, data: &[u8]) {
        self.schedule_data((ci, conn), dir, Bytes::copy_from_slice(data));
    }

    /// Cuts the member off: connects hang, established connections are black-holed.
    pub fn partition(&mut self, member: usize) {
        self.partitioned.insert(member);
        self.blackhole_member(member);
    }

    /// Ends the member's partition for new connections.
    pub fn heal(&mut self, member: usize) {
        self.partitioned.remove(&member);
    }
}
