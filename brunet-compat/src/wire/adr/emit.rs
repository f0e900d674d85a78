//! ADR encoding, the inverse of `parse`: decoded values re-encode byte for byte.

use super::Adr;
use crate::wire::EmitError;

impl Adr {
    /// Bytes [`Adr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Adr::Null | Adr::Bool(_) => 1,
            Adr::I8(_) | Adr::U8(_) => 2,
            Adr::I16(_) | Adr::U16(_) => 3,
            Adr::I32(_) | Adr::U32(_) | Adr::F32(_) => 5,
            Adr::I64(_) | Adr::U64(_) | Adr::F64(_) => 9,
            Adr::Str(s) => s.len() + 2,
            Adr::List(l) => 2 + l.iter().map(Adr::buffer_len).sum::<usize>(),
            Adr::Map(m) | Adr::Exception(m) => {
                2 + m
                    .iter()
                    .map(|(k, v)| k.buffer_len() + v.buffer_len())
                    .sum::<usize>()
            }
            Adr::Bytes(b) => 2 + len_field_len(b.len()) + b.len(),
            Adr::Ints(i) => 2 + len_field_len(i.len()) + 4 * i.len(),
        }
    }

    /// Appends the encoding to `out`. On error `out` may hold a partial value.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Adr::Null => out.push(b'0'),
            Adr::Bool(true) => out.push(b'T'),
            Adr::Bool(false) => out.push(b'F'),
            Adr::I8(v) => tagged(out, b'b', &v.to_be_bytes()),
            Adr::U8(v) => tagged(out, b'B', &v.to_be_bytes()),
            Adr::I16(v) => tagged(out, b's', &v.to_be_bytes()),
            Adr::U16(v) => tagged(out, b'S', &v.to_be_bytes()),
            Adr::I32(v) => tagged(out, b'i', &v.to_be_bytes()),
            Adr::U32(v) => tagged(out, b'I', &v.to_be_bytes()),
            Adr::I64(v) => tagged(out, b'l', &v.to_be_bytes()),
            Adr::U64(v) => tagged(out, b'L', &v.to_be_bytes()),
            Adr::F32(v) => tagged(out, b'f', &v.to_be_bytes()),
            Adr::F64(v) => tagged(out, b'd', &v.to_be_bytes()),
            Adr::Str(s) => {
                if s.as_bytes().contains(&0) {
                    return Err(EmitError::InteriorNul);
                }
                out.push(b'_');
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Adr::List(l) => {
                out.push(b'(');
                for v in l {
                    v.emit(out)?;
                }
                out.push(b')');
            }
            Adr::Map(m) => pairs(out, b'{', m, b'}')?,
            Adr::Exception(m) => pairs(out, b'X', m, b'x')?,
            Adr::Bytes(b) => {
                array_head(out, b.len(), b'B')?;
                out.extend_from_slice(b);
            }
            Adr::Ints(ints) => {
                array_head(out, ints.len(), b'i')?;
                for i in ints {
                    out.extend_from_slice(&i.to_be_bytes());
                }
            }
        }
        Ok(())
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

fn tagged(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(bytes);
}

fn pairs(out: &mut Vec<u8>, open: u8, m: &[(Adr, Adr)], close: u8) -> Result<(), EmitError> {
    out.push(open);
    for (k, v) in m {
        k.emit(out)?;
        v.emit(out)?;
    }
    out.push(close);
    Ok(())
}

/// Size of the tagged length: Brunet's `SerializePosNum` picks the smallest of B, S, I.
fn len_field_len(n: usize) -> usize {
    if n <= u8::MAX.into() {
        2
    } else if n <= u16::MAX.into() {
        3
    } else {
        5
    }
}

fn array_head(out: &mut Vec<u8>, n: usize, elt: u8) -> Result<(), EmitError> {
    out.push(b'a');
    if let Ok(b) = u8::try_from(n) {
        tagged(out, b'B', &[b]);
    } else if let Ok(s) = u16::try_from(n) {
        tagged(out, b'S', &s.to_be_bytes());
    } else {
        let i = u32::try_from(n).map_err(|_| EmitError::ArrayTooLong)?;
        tagged(out, b'I', &i.to_be_bytes());
    }
    out.push(elt);
    Ok(())
}
