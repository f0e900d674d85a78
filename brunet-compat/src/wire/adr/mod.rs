//! ADR ("Another Data Representation"): Brunet's self-describing value encoding.
//!
//! From `Util/AdrConverter.cs` (the code, not the outdated `adr_serialization_doc.txt`):
//!
//! | tag | value |
//! |---|---|
//! | `0` `T` `F` | null, true, false |
//! | `b B s S i I l L` | i8 u8 i16 u16 i32 u32 i64 u64, big-endian |
//! | `f` `d` | f32, f64 |
//! | `_` … `\0` | UTF-8 string |
//! | `(` … `)` | list |
//! | `{` k v … `}` | map, in sender order |
//! | `X` k v … `x` | exception map (`message`, `code`, `stacktrace`) |
//! | `a` len elt … | array: length as the smallest of `B`/`S`/`I`, element tag `B` or `i`, raw elements |
//!
//! Maps keep insertion order ([`Adr::Map`] is a list of pairs) because Brunet writes hash
//! order and byte-exact re-encoding needs it preserved. Decoding is bounded by
//! [`AdrLimits`]: nesting depth, total value count and array length, so hostile input can
//! neither overflow the stack nor make us allocate more than a small multiple of its size.

mod emit;
mod parse;

pub use parse::{parse, parse_exact, parse_with};

/// A decoded ADR value.
#[derive(Debug, Clone, PartialEq)]
pub enum Adr {
    /// `0`
    Null,
    /// `T` / `F`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s`
    I16(i16),
    /// `S`
    U16(u16),
    /// `i`
    I32(i32),
    /// `I`
    U32(u32),
    /// `l`
    I64(i64),
    /// `L`
    U64(u64),
    /// `f` (kept bit-exact, NaN payloads included)
    F32(f32),
    /// `d`
    F64(f64),
    /// `_` NUL-terminated UTF-8.
    Str(String),
    /// `(` … `)`
    List(Vec<Adr>),
    /// `{` … `}` in wire order.
    Map(Vec<(Adr, Adr)>),
    /// `X` … `x`: an RPC exception's fields, in wire order.
    Exception(Vec<(Adr, Adr)>),
    /// `a` + `B`: a byte array.
    Bytes(Vec<u8>),
    /// `a` + `i`: an int32 array.
    Ints(Vec<i32>),
}

/// Bounds applied while decoding untrusted ADR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdrLimits {
    /// Deepest nesting of lists, maps and exceptions (the top level is depth 0).
    pub max_depth: usize,
    /// Most values in one decode, containers included.
    pub max_values: usize,
    /// Most elements in one `a` array.
    pub max_array_len: usize,
}

impl Default for AdrLimits {
    /// Generous for Brunet (its messages nest about 6 deep and hold tens of values) yet
    /// small enough that a 64 KiB datagram cannot exhaust the stack or memory.
    fn default() -> Self {
        AdrLimits {
            max_depth: 32,
            max_values: 65_536,
            max_array_len: 1 << 20,
        }
    }
}

/// Why bytes are not valid ADR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdrError {
    /// The input ends inside a value starting at `offset`.
    #[error("ADR truncated in value at offset {offset}")]
    Truncated {
        /// Where the incomplete value starts.
        offset: usize,
    },
    /// A tag byte that is not part of ADR.
    #[error("unknown ADR tag {tag:#04x} at offset {offset}")]
    UnknownTag {
        /// The byte found.
        tag: u8,
        /// Its position.
        offset: usize,
    },
    /// A `)`, `}` or `x` that does not close the innermost open container (or a map
    /// terminator where a value is due).
    #[error("unexpected ADR terminator {tag:#04x} at offset {offset}")]
    UnexpectedTerminator {
        /// The terminator found.
        tag: u8,
        /// Its position.
        offset: usize,
    },
    /// A string that is not valid UTF-8.
    #[error("ADR string at offset {offset} is not UTF-8")]
    InvalidUtf8 {
        /// Where the string's tag is.
        offset: usize,
    },
    /// Containers nested deeper than [`AdrLimits::max_depth`].
    #[error("ADR nested deeper than {limit}")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// More values than [`AdrLimits::max_values`].
    #[error("more than {limit} ADR values")]
    TooManyValues {
        /// The limit in force.
        limit: usize,
    },
    /// An array length above [`AdrLimits::max_array_len`].
    #[error("ADR array of {len} elements exceeds {limit}")]
    ArrayTooLong {
        /// The length announced.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// An array length that is not the canonical smallest `B`/`S`/`I` form Brunet writes
    /// (re-encoding it would change the bytes).
    #[error("non-canonical ADR array length at offset {offset}")]
    BadArrayLength {
        /// Where the length value starts.
        offset: usize,
    },
    /// An array element type Brunet cannot decode (only `B` and `i` are supported).
    #[error("unsupported ADR array element tag {tag:#04x} at offset {offset}")]
    UnsupportedArrayType {
        /// The element tag.
        tag: u8,
        /// Its position.
        offset: usize,
    },
    /// Bytes left over after a value that should fill its buffer.
    #[error("{count} trailing bytes after ADR value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl Adr {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Adr {
        Adr::Str(s.into())
    }

    /// A map from string keys, in the given order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Adr)>) -> Adr {
        Adr::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Adr::Str(k.into()), v))
                .collect(),
        )
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Adr::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Adr]> {
        match self {
            Adr::List(l) => Some(l),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Adr, Adr)]> {
        match self {
            Adr::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The bytes, if this is a byte array.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Adr::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Any integer type widened to i64 (Brunet unboxes lengths and codes this way); a
    /// `u64` above `i64::MAX` gives `None`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Adr::I8(v) => Some(v.into()),
            Adr::U8(v) => Some(v.into()),
            Adr::I16(v) => Some(v.into()),
            Adr::U16(v) => Some(v.into()),
            Adr::I32(v) => Some(v.into()),
            Adr::U32(v) => Some(v.into()),
            Adr::I64(v) => Some(v),
            Adr::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value under string key `key` of a map or exception (first match).
    pub fn get(&self, key: &str) -> Option<&Adr> {
        match self {
            Adr::Map(m) | Adr::Exception(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// True for [`Adr::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Adr::Null)
    }
}

impl From<&str> for Adr {
    fn from(s: &str) -> Adr {
        Adr::Str(s.to_owned())
    }
}

impl From<String> for Adr {
    fn from(s: String) -> Adr {
        Adr::Str(s)
    }
}

impl From<i32> for Adr {
    fn from(v: i32) -> Adr {
        Adr::I32(v)
    }
}

impl From<bool> for Adr {
    fn from(v: bool) -> Adr {
        Adr::Bool(v)
    }
}

impl From<Vec<Adr>> for Adr {
    fn from(v: Vec<Adr>) -> Adr {
        Adr::List(v)
    }
}

#[cfg(test)]
mod tests;
