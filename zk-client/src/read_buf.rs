//! The adapters' socket read buffer.

/// The adapters' socket read buffer: it starts small, so an idle session costs
/// little memory, and doubles (up to 64 KiB) while reads keep filling it.
#[derive(Debug)]
pub struct ReadBuf {
    buf: Vec<u8>,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf { buf: vec![0; 2048] }
    }
}

impl ReadBuf {
    const MAX: usize = 64 * 1024;

    /// The space to read into.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// After a read of `n` bytes (already handed to the core): grow if it was full.
    pub fn after_read(&mut self, n: usize) {
        if n == self.buf.len() && self.buf.len() < Self::MAX {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }
}
