//! A znode's data: bytes, or null.
//!
//! ZooKeeper keeps null data and empty data apart (the Java client's `null` and
//! `new byte[0]`, kazoo's `None` and `b""`), and programs that share nodes with
//! them can depend on the difference. [`Data`] keeps it while reading like a byte
//! slice (it derefs to `[u8]`, null reading as empty), and every call that writes
//! data takes [`IntoData`]: any byte slice, or [`Data::null()`].

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// A znode's data as read: bytes or null. Derefs to the bytes (empty for null).
///
/// ```
/// use zk_client::Data;
/// let d = Data::new("v1");
/// assert_eq!(d, "v1");               // compares with &str, &[u8], arrays, Vec<u8>
/// assert_eq!(&d[..2], b"v1");        // and reads as a byte slice
/// assert_eq!(d.to_str(), Some("v1"));
///
/// // kazoo's `None` and `b""` stay apart:
/// let null = Data::null();
/// assert!(null.is_null() && null.is_empty());
/// assert_ne!(null, Data::new(""));
/// assert_eq!(null.into_option(), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Data(Option<Bytes>);

impl Data {
    /// Null data (jute length -1), what the Java client writes for `null`.
    pub const fn null() -> Data {
        Data(None)
    }

    /// These bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Data {
        Data(Some(bytes.into()))
    }

    /// Whether the node holds null rather than (possibly empty) bytes.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The bytes; null becomes empty.
    pub fn into_bytes(self) -> Bytes {
        self.0.unwrap_or_default()
    }

    /// `None` for null, as kazoo returns it.
    pub fn into_option(self) -> Option<Bytes> {
        self.0
    }

    /// `None` for null, borrowed.
    pub fn as_option(&self) -> Option<&Bytes> {
        self.0.as_ref()
    }

    /// The bytes as UTF-8 text, if they are (null reads as `""`).
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(self).ok()
    }
}

impl Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("null"),
            Some(b) => fmt::Debug::fmt(b, f),
        }
    }
}

impl From<Option<Bytes>> for Data {
    fn from(b: Option<Bytes>) -> Data {
        Data(b)
    }
}

impl From<Data> for Option<Bytes> {
    fn from(d: Data) -> Option<Bytes> {
        d.0
    }
}

impl PartialEq<[u8]> for Data {
    fn eq(&self, other: &[u8]) -> bool {
        self.0.as_deref() == Some(other)
    }
}

impl PartialEq<&[u8]> for Data {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0.as_deref() == Some(*other)
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Data {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0.as_deref() == Some(&other[..])
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Data {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0.as_deref() == Some(&other[..])
    }
}

impl PartialEq<&str> for Data {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_deref() == Some(other.as_bytes())
    }
}

impl PartialEq<Vec<u8>> for Data {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.0.as_deref() == Some(&other[..])
    }
}

/// What a write accepts as node data: any byte slice (`&[u8]`, `Vec<u8>`, `&str`,
/// `String`, `Bytes`, arrays, your own `AsRef<[u8]>` type), or a [`Data`], whose
/// null writes null. The bytes are copied once into the request.
///
/// ```
/// use zk_client::{Bytes, Data, IntoData};
/// assert_eq!("text".into_data(), Some(Bytes::from_static(b"text")));
/// assert_eq!(vec![1u8, 2].into_data(), Some(Bytes::from_static(&[1, 2])));
/// assert_eq!(b"".into_data(), Some(Bytes::new()));      // empty data...
/// assert_eq!(Data::null().into_data(), None);           // ...is not null data
/// // Data read from one node writes back as it was, null included:
/// # let (data, _) = (Data::null(), ());
/// assert_eq!(data.clone().into_data(), data.into_option());
/// ```
pub trait IntoData {
    /// The data to send; `None` is null.
    fn into_data(self) -> Option<Bytes>;
}

impl<T: AsRef<[u8]>> IntoData for T {
    fn into_data(self) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(self.as_ref()))
    }
}

impl IntoData for Data {
    fn into_data(self) -> Option<Bytes> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_differ_but_both_read_empty() {
        let null = Data::null();
        let empty = Data::new(Bytes::new());
        assert_ne!(null, empty);
        assert!(null.is_null() && !empty.is_null());
        assert_eq!(&null[..], b"");
        assert_eq!(&empty[..], b"");
        assert_eq!(null.clone().into_option(), None);
        assert_eq!(format!("{null:?}"), "null");
        assert_eq!(Data::new("hi"), "hi");
        assert_eq!(Data::new("hi"), b"hi");
        assert_eq!(Data::null().into_data(), None);
        assert_eq!("x".into_data(), Some(Bytes::from_static(b"x")));
        assert_eq!(vec![1u8].into_data(), Some(Bytes::from_static(&[1])));
    }
}
