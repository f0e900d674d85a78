//! ADR decoding: a bounded recursive-descent reader.

use super::{Adr, AdrError, AdrLimits};

/// Decodes one value from the front of `buf` with default limits; returns it and the
/// number of bytes it took.
pub fn parse(buf: &[u8]) -> Result<(Adr, usize), AdrError> {
    parse_with(buf, &AdrLimits::default())
}

/// Decodes one value that must fill `buf` exactly.
pub fn parse_exact(buf: &[u8]) -> Result<Adr, AdrError> {
    let (value, used) = parse(buf)?;
    match buf.len() - used {
        0 => Ok(value),
        count => Err(AdrError::TrailingBytes { count }),
    }
}

/// Decodes one value from the front of `buf` under `limits`.
pub fn parse_with(buf: &[u8], limits: &AdrLimits) -> Result<(Adr, usize), AdrError> {
    let mut r = Reader {
        buf,
        pos: 0,
        values: 0,
        limits,
    };
    let value = r.value(0)?;
    Ok((value, r.pos))
}

const LIST_END: u8 = b')';
const MAP_END: u8 = b'}';
const EXCEPTION_END: u8 = b'x';

struct Reader<'a, 'l> {
    buf: &'a [u8],
    pos: usize,
    values: usize,
    limits: &'l AdrLimits,
}

impl Reader<'_, '_> {
    /// A value where no terminator may appear.
    fn value(&mut self, depth: usize) -> Result<Adr, AdrError> {
        let at = self.pos;
        match self.item(depth, None)? {
            Some(v) => Ok(v),
            // item() only returns None after matching the given terminator, and there is none.
            None => Err(AdrError::UnexpectedTerminator { tag: 0, offset: at }),
        }
    }

    /// A value, or `None` when the byte is the terminator `end` of the open container.
    fn item(&mut self, depth: usize, end: Option<u8>) -> Result<Option<Adr>, AdrError> {
        let start = self.pos;
        let tag = *self
            .buf
            .get(start)
            .ok_or(AdrError::Truncated { offset: start })?;
        if matches!(tag, LIST_END | MAP_END | EXCEPTION_END) {
            if end == Some(tag) {
                self.pos += 1;
                return Ok(None);
            }
            return Err(AdrError::UnexpectedTerminator { tag, offset: start });
        }
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(AdrError::TooManyValues {
                limit: self.limits.max_values,
            });
        }
        self.pos += 1;
        let v = match tag {
            b'0' => Adr::Null,
            b'T' => Adr::Bool(true),
            b'F' => Adr::Bool(false),
            b'b' => Adr::I8(i8::from_be_bytes(self.fixed(start)?)),
            b'B' => Adr::U8(u8::from_be_bytes(self.fixed(start)?)),
            b's' => Adr::I16(i16::from_be_bytes(self.fixed(start)?)),
            b'S' => Adr::U16(u16::from_be_bytes(self.fixed(start)?)),
            b'i' => Adr::I32(i32::from_be_bytes(self.fixed(start)?)),
            b'I' => Adr::U32(u32::from_be_bytes(self.fixed(start)?)),
            b'l' => Adr::I64(i64::from_be_bytes(self.fixed(start)?)),
            b'L' => Adr::U64(u64::from_be_bytes(self.fixed(start)?)),
            b'f' => Adr::F32(f32::from_be_bytes(self.fixed(start)?)),
            b'd' => Adr::F64(f64::from_be_bytes(self.fixed(start)?)),
            b'_' => Adr::Str(self.string(start)?),
            b'(' => {
                let depth = self.deeper(depth)?;
                let mut list = Vec::new();
                while let Some(v) = self.item(depth, Some(LIST_END))? {
                    list.push(v);
                }
                Adr::List(list)
            }
            b'{' => Adr::Map(self.pairs(depth, MAP_END)?),
            b'X' => Adr::Exception(self.pairs(depth, EXCEPTION_END)?),
            b'a' => self.array(depth, start)?,
            _ => return Err(AdrError::UnknownTag { tag, offset: start }),
        };
        Ok(Some(v))
    }

    fn deeper(&self, depth: usize) -> Result<usize, AdrError> {
        if depth >= self.limits.max_depth {
            return Err(AdrError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        Ok(depth + 1)
    }

    fn pairs(&mut self, depth: usize, end: u8) -> Result<Vec<(Adr, Adr)>, AdrError> {
        let depth = self.deeper(depth)?;
        let mut pairs = Vec::new();
        while let Some(k) = self.item(depth, Some(end))? {
            let v = self.value(depth)?;
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    /// `N` raw bytes of a fixed-size number whose tag is at `start`.
    fn fixed<const N: usize>(&mut self, start: usize) -> Result<[u8; N], AdrError> {
        let bytes = self.take(N, start)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn take(&mut self, n: usize, start: usize) -> Result<&[u8], AdrError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(AdrError::Truncated { offset: start })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn string(&mut self, start: usize) -> Result<String, AdrError> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(AdrError::Truncated { offset: start })?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| AdrError::InvalidUtf8 { offset: start })?
            .to_owned();
        self.pos += nul + 1;
        Ok(s)
    }

    fn array(&mut self, depth: usize, start: usize) -> Result<Adr, AdrError> {
        let len_at = self.pos;
        let len = match self.value(depth)? {
            Adr::U8(n) => u64::from(n),
            Adr::U16(n) if n > u8::MAX.into() => u64::from(n),
            Adr::U32(n) if n > u16::MAX.into() => u64::from(n),
            _ => return Err(AdrError::BadArrayLength { offset: len_at }),
        };
        let limit = self.limits.max_array_len;
        let n = usize::try_from(len)
            .ok()
            .filter(|&n| n <= limit)
            .ok_or(AdrError::ArrayTooLong { len, limit })?;
        let elt_at = self.pos;
        let [elt] = self.fixed::<1>(start)?;
        match elt {
            b'B' => Ok(Adr::Bytes(self.take(n, start)?.to_vec())),
            b'i' => {
                // n ≤ max_array_len, so n * 4 cannot overflow on 64- or 32-bit targets
                // with the default limit; checked_mul guards custom limits.
                let bytes = n
                    .checked_mul(4)
                    .ok_or(AdrError::ArrayTooLong { len, limit })?;
                let raw = self.take(bytes, start)?;
                let ints = raw
                    .chunks_exact(4)
                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok(Adr::Ints(ints))
            }
            tag => Err(AdrError::UnsupportedArrayType {
                tag,
                offset: elt_at,
            }),
        }
    }
}
