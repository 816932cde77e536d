//! Jute, ZooKeeper's binary record encoding: big-endian integers, length-prefixed
//! buffers and strings (-1 = null), count-prefixed vectors (-1 = null).
//!
//! A field that may be null on the wire and where null means something of its own
//! (node data: a node created with null data reads back as null, not as empty) is
//! an `Option`: `Option<Bytes>` and `Option<String>` keep null (`None`, written as
//! length -1) apart from empty. Plain `Bytes` and `String` fields read null as empty
//! and are always written with a length of 0 or more.
//!
//! Decoding works on a [`Reader`] over a frozen [`Bytes`] frame, so buffers come
//! out as zero-copy slices of the receive buffer. Every read checks what remains
//! first; a claimed length is never trusted for an allocation.
//!
//! Why: to read or write a record yourself (a tool that inspects captured
//! traffic, a test double that plays the server), encode it into a buffer and
//! decode it back:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use zk_proto::error::DecodeError;
//! use zk_proto::jute::{from_bytes, to_bytes, Decode, Encode, Reader};
//! use zk_proto::{Acl, CreateRequest, SetDataRequest};
//!
//! let req = CreateRequest {
//!     path: "/app/lock-".into(),
//!     data: Some(Bytes::from_static(b"owner=1")),
//!     acl: Acl::open_unsafe(),
//!     flags: 3,
//! };
//! let wire = to_bytes(&req);
//! assert_eq!(from_bytes::<CreateRequest>(wire.clone()), Ok(req.clone()));
//!
//! // Records concatenate; a Reader takes them one by one.
//! let mut buf = BytesMut::new();
//! req.encode(&mut buf);
//! 7i32.encode(&mut buf);
//! let mut r = Reader::new(buf.freeze());
//! assert_eq!(CreateRequest::decode(&mut r), Ok(req));
//! assert_eq!(r.i32(), Ok(7));
//! assert!(r.is_empty());
//!
//! // Null data (length -1) stays apart from empty data.
//! let null = SetDataRequest { path: "/a".into(), data: None, version: -1 };
//! let empty = SetDataRequest { data: Some(Bytes::new()), ..null.clone() };
//! assert_ne!(to_bytes(&null), to_bytes(&empty));
//! assert_eq!(from_bytes::<SetDataRequest>(to_bytes(&null)).unwrap().data, None);
//!
//! // Short input and leftovers are errors, never panics.
//! assert!(matches!(
//!     from_bytes::<CreateRequest>(wire.slice(..wire.len() - 1)),
//!     Err(DecodeError::Truncated { .. })
//! ));
//! let mut long = BytesMut::from(&wire[..]);
//! long.extend_from_slice(b"xx");
//! assert_eq!(from_bytes::<CreateRequest>(long.freeze()), Err(DecodeError::TrailingBytes(2)));
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// A record that can be written in jute encoding.
pub trait Encode {
    /// Appends the encoding of `self` to `buf`.
    fn encode(&self, buf: &mut BytesMut);
}

/// A record that can be read from jute encoding.
pub trait Decode: Sized {
    /// Reads one value, advancing the reader; fails without panicking on short or bad input.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;

    /// The fewest bytes one encoded value can take. Used to cap the capacity
    /// reserved for a vector by what the input could possibly hold.
    const MIN_SIZE: usize = 1;
}

/// A cursor over one received frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads from `buf`.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                available: self.buf.len(),
            });
        }
        Ok(self.buf.split_to(n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        if self.buf.len() < N {
            return Err(DecodeError::Truncated {
                needed: N,
                available: self.buf.len(),
            });
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        bytes::Buf::advance(&mut self.buf, N);
        Ok(out)
    }

    /// Reads a jute `int`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads a jute `long`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Reads a jute `boolean` (any non-zero byte is true, as the Java reader does).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    fn length(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::InvalidLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    /// Reads a jute `buffer`; null (-1) comes back as `None`.
    pub fn opt_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self.length()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// Reads a jute `buffer`, null read as empty.
    pub fn buffer(&mut self) -> Result<Bytes, DecodeError> {
        Ok(self.opt_buffer()?.unwrap_or_default())
    }

    /// Reads a jute `ustring`; null (-1) comes back as `None`.
    pub fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.length()? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n)?;
                match std::str::from_utf8(&raw) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(DecodeError::InvalidUtf8),
                }
            }
        }
    }

    /// Reads a jute `ustring`, null read as empty.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.opt_string()?.unwrap_or_default())
    }

    /// Reads a jute `vector`, null read as empty.
    pub fn vec<T: Decode>(&mut self) -> Result<Vec<T>, DecodeError> {
        let Some(n) = self.length()? else {
            return Ok(Vec::new());
        };
        // Never reserve more than the remaining input could encode.
        let cap = n.min(self.remaining() / T::MIN_SIZE.max(1));
        let mut out = Vec::with_capacity(cap);
        for _ in 0..n {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

/// Writes a jute `buffer` (never null).
pub fn put_buffer(buf: &mut BytesMut, data: &[u8]) {
    buf.put_i32(data.len() as i32);
    buf.put_slice(data);
}

/// Writes an optional `buffer`, `None` as null (length -1).
pub fn put_opt_buffer(buf: &mut BytesMut, data: Option<&[u8]>) {
    match data {
        Some(d) => put_buffer(buf, d),
        None => buf.put_i32(-1),
    }
}

/// Writes a jute `ustring` (never null).
pub fn put_string(buf: &mut BytesMut, s: &str) {
    put_buffer(buf, s.as_bytes());
}

/// Writes an optional `ustring`, `None` as null.
pub fn put_opt_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i32(-1),
    }
}

impl Encode for i32 {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(*self)
    }
}
impl Decode for i32 {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.i32()
    }
    const MIN_SIZE: usize = 4;
}
impl Encode for i64 {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i64(*self)
    }
}
impl Decode for i64 {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.i64()
    }
    const MIN_SIZE: usize = 8;
}
impl Encode for bool {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(*self as u8)
    }
}
impl Decode for bool {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.bool()
    }
}
impl Encode for Bytes {
    fn encode(&self, buf: &mut BytesMut) {
        put_buffer(buf, self)
    }
}
impl Decode for Bytes {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.buffer()
    }
    const MIN_SIZE: usize = 4;
}
impl Encode for Option<Bytes> {
    fn encode(&self, buf: &mut BytesMut) {
        put_opt_buffer(buf, self.as_deref())
    }
}
impl Decode for Option<Bytes> {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.opt_buffer()
    }
    const MIN_SIZE: usize = 4;
}
impl Encode for String {
    fn encode(&self, buf: &mut BytesMut) {
        put_string(buf, self)
    }
}
impl Decode for String {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.string()
    }
    const MIN_SIZE: usize = 4;
}
impl Encode for Option<String> {
    fn encode(&self, buf: &mut BytesMut) {
        put_opt_string(buf, self.as_deref())
    }
}
impl Decode for Option<String> {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.opt_string()
    }
    const MIN_SIZE: usize = 4;
}
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.len() as i32);
        for x in self {
            x.encode(buf);
        }
    }
}
impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.vec()
    }
    const MIN_SIZE: usize = 4;
}

/// Declares a jute record: a struct whose fields are encoded in order.
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $crate::jute::Encode for $name {
            #[allow(unused_variables)]
            fn encode(&self, buf: &mut bytes::BytesMut) {
                $( $crate::jute::Encode::encode(&self.$field, buf); )*
            }
        }
        impl $crate::jute::Decode for $name {
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::jute::Reader) -> Result<Self, $crate::error::DecodeError> {
                Ok($name { $($field: $crate::jute::Decode::decode(r)?),* })
            }
            const MIN_SIZE: usize = 0 $(+ <$ty as $crate::jute::Decode>::MIN_SIZE)*;
        }
    };
}
pub(crate) use record;

/// Encodes a record into a fresh buffer (tests and tools).
pub fn to_bytes<T: Encode>(x: &T) -> Bytes {
    let mut b = BytesMut::new();
    x.encode(&mut b);
    b.freeze()
}

/// Decodes a whole buffer as one record, rejecting trailing bytes.
pub fn from_bytes<T: Decode>(b: Bytes) -> Result<T, DecodeError> {
    let mut r = Reader::new(b);
    let x = T::decode(&mut r)?;
    r.finish()?;
    Ok(x)
}
