//! The TURN over TCP framing: a byte stream from a TURN server (hostile or broken), cut into
//! reads at arbitrary points, and datagrams from the local client. Nothing may panic; every
//! frame handed on has exactly the length its header says; a stream that cannot be framed is
//! refused, never skipped over.
#![no_main]

use chamber::link::turn_frame::{Deframer, ends_allocation, frame_len, to_stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    // The same stream, read in chunks of `cut + 1` bytes.
    let mut d = Deframer::default();
    let mut taken = 0usize;
    'read: for chunk in stream.chunks(usize::from(cut) + 1) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert_eq!(frame_len(&f), Ok(Some(f.len())), "a frame is whole");
                    assert_eq!(
                        &stream[taken..taken + f.len()],
                        &f[..],
                        "in order, unchanged"
                    );
                    taken += f.len();
                    let _ = ends_allocation(&f);
                }
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    // A datagram from the client goes on the stream as exactly one frame, or not at all.
    if let Some(f) = to_stream(stream) {
        assert_eq!(frame_len(&f), Ok(Some(f.len())));
    }
    let _ = ends_allocation(stream);
});
