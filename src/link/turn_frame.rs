//! TURN framing on a stream (RFC 8656 §12.5), sans-IO: a STUN message is 20 bytes of header
//! plus its length (always a multiple of 4); a ChannelData message is 4 bytes of header plus
//! its length, padded to a multiple of 4 on a stream. A stream that fits neither is refused
//! whole: there is no resynchronising inside a byte stream.

/// The STUN magic cookie (RFC 8489 §5): a stream whose STUN header lacks it is not TURN.
const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// STUN Refresh request (RFC 8656 §7): a LIFETIME of 0 in it ends the allocation.
const REFRESH_REQUEST: u16 = 0x0004;
/// The LIFETIME attribute.
const ATTR_LIFETIME: u16 = 0x000D;

/// Why a byte stream from a TURN server cannot be framed: the connection is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first two bits name neither STUN (00) nor ChannelData (01).
    #[error("neither STUN nor ChannelData (first byte {0:#04x})")]
    UnknownKind(u8),
    /// A STUN header without the magic cookie.
    #[error("STUN header without the magic cookie")]
    NoCookie,
    /// A STUN length that is not a multiple of 4.
    #[error("STUN length {0} is not a multiple of 4")]
    BadLength(u16),
}

/// The length of the frame at the start of `buf` on a stream, padding included; `Ok(None)`
/// while its header is incomplete. The frame itself may still be incomplete.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first >> 6 {
        0 => {
            if buf.len() < 20 {
                return Ok(None);
            }
            if buf[4..8] != MAGIC {
                return Err(FrameError::NoCookie);
            }
            let len = u16::from_be_bytes([buf[2], buf[3]]);
            if !len.is_multiple_of(4) {
                return Err(FrameError::BadLength(len));
            }
            Ok(Some(20 + usize::from(len)))
        }
        1 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            Ok(Some(4 + len.next_multiple_of(4)))
        }
        _ => Err(FrameError::UnknownKind(first)),
    }
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match frame_len(&self.buf)? {
            Some(n) if self.buf.len() >= n => Ok(Some(self.buf.drain(..n).collect())),
            _ => Ok(None),
        }
    }
}

/// The bytes to put on the stream for one datagram from the client: ChannelData padded to a
/// multiple of 4 (the turn crate pads already; another client might not). `None` for
/// anything that is neither STUN nor ChannelData, or shorter than its own header says.
pub fn to_stream(datagram: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let n = match frame_len(datagram) {
        Ok(Some(n)) => n,
        _ => return None,
    };
    match n.cmp(&datagram.len()) {
        std::cmp::Ordering::Equal => Some(datagram.into()),
        std::cmp::Ordering::Less => Some(datagram[..n].into()),
        // Only ChannelData may lack its padding on a datagram.
        std::cmp::Ordering::Greater if datagram[0] >> 6 == 1 && n - datagram.len() < 4 => {
            let mut v = datagram.to_vec();
            v.resize(n, 0);
            Some(v.into())
        }
        std::cmp::Ordering::Greater => None,
    }
}

/// Whether `msg` is a Refresh request with a LIFETIME of 0: the client is ending its
/// allocation, so the connection can close once the answer is back.
pub fn ends_allocation(msg: &[u8]) -> bool {
    if msg.len() < 20 || u16::from_be_bytes([msg[0], msg[1]]) != REFRESH_REQUEST {
        return false;
    }
    let mut at = 20;
    while at + 4 <= msg.len() {
        let typ = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        let value = msg.get(at + 4..at + 4 + len);
        if typ == ATTR_LIFETIME {
            return value == Some(&[0, 0, 0, 0][..]);
        }
        at += 4 + len.next_multiple_of(4);
    }
    false
}

/// A STUN message for tests: `typ`, a fixed transaction id, and `attrs` padded to 4.
#[cfg(test)]
pub(super) fn stun(typ: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        body.resize(body.len().next_multiple_of(4), 0);
    }
    let mut m = typ.to_be_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&MAGIC);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let a = stun(0x0003, &[(0x0019, &[17, 0, 0, 0])]);
        let b = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let mut d = Deframer::default();
        // One byte at a time: frames come out whole, and only once complete.
        let mut out = Vec::new();
        for byte in &stream {
            d.push(&[*byte]);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, vec![a, b.to_vec()]);
    }

    #[test]
    fn garbage_streams_are_refused() {
        assert_eq!(
            frame_len(&[0xC0, 0, 0, 0]),
            Err(FrameError::UnknownKind(0xC0))
        );
        let mut m = stun(0x0001, &[]);
        m[4] = 0;
        assert_eq!(frame_len(&m), Err(FrameError::NoCookie));
        let mut m = stun(0x0001, &[]);
        m[3] = 3;
        assert_eq!(frame_len(&m), Err(FrameError::BadLength(3)));
        assert_eq!(frame_len(&[0x40, 0]), Ok(None));
    }

    #[test]
    fn unpadded_channel_data_is_padded_for_the_stream() {
        let d = [0x40, 0x01, 0x00, 0x03, 9, 9, 9];
        assert_eq!(to_stream(&d).unwrap().len(), 8);
        assert_eq!(to_stream(&[0x40, 0x01, 0x00, 0x09, 1]), None);
        assert_eq!(to_stream(&[0xFF; 30]), None);
    }

    #[test]
    fn only_a_zero_lifetime_refresh_ends_an_allocation() {
        let end = stun(
            REFRESH_REQUEST,
            &[(0x0006, b"user"), (ATTR_LIFETIME, &[0; 4])],
        );
        assert!(ends_allocation(&end));
        let keep = stun(REFRESH_REQUEST, &[(ATTR_LIFETIME, &[0, 0, 2, 88])]);
        assert!(!ends_allocation(&keep));
        let other = stun(0x0008, &[(ATTR_LIFETIME, &[0; 4])]);
        assert!(!ends_allocation(&other));
        assert!(!ends_allocation(&end[..22]));
    }
}
