//! The wire side of the Binding client: requests encoded and responses read with stun-rs.

use std::net::SocketAddr;

use stun_rs::attributes::discovery::{
    ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin,
};
use stun_rs::attributes::stun::{ErrorCode, MappedAddress, XorMappedAddress};
use stun_rs::methods::BINDING;
use stun_rs::{
    MessageClass, MessageEncoderBuilder, StunMessage, StunMessageBuilder, TransactionId,
};

use super::ReflectError;
use super::stun::Change;

/// Encodes a Binding request with `id`, adding CHANGE-REQUEST when a flag is set.
pub fn encode_request(id: TransactionId, change: Change) -> Result<Vec<u8>, ReflectError> {
    let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request).with_transaction_id(id);
    use ChangeRequestFlags::{ChangeIp, ChangePort};
    let flags = match (change.ip, change.port) {
        (true, true) => Some(ChangeIp | ChangePort),
        (true, false) => Some(ChangeIp.into()),
        (false, true) => Some(ChangePort.into()),
        (false, false) => None,
    };
    if flags.is_some() {
        b = b.with_attribute(ChangeRequest::new(flags));
    }
    let mut buf = vec![0u8; 64];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, &b.build())
        .map_err(|e| ReflectError::Encode {
            reason: e.to_string(),
        })?;
    buf.truncate(n);
    Ok(buf)
}

/// What a response to one of our requests says.
pub(super) enum Answer {
    /// A success response.
    Mapped {
        mapped: SocketAddr,
        other_address: Option<SocketAddr>,
        response_origin: Option<SocketAddr>,
    },
    /// An error response, as the error to return.
    Refused(ReflectError),
}

/// Reads a response; `Err` names what makes it unusable.
pub(super) fn parse_answer(msg: &StunMessage, server: SocketAddr) -> Result<Answer, &'static str> {
    if msg.class() == MessageClass::ErrorResponse {
        let code = msg
            .get::<ErrorCode>()
            .and_then(|a| a.as_error_code().ok())
            .ok_or("error response without ERROR-CODE")?;
        return Ok(Answer::Refused(ReflectError::ErrorResponse {
            server,
            code: code.error_code().error_code(),
            reason: code.error_code().reason().to_string(),
        }));
    }
    let xor = msg
        .get::<XorMappedAddress>()
        .and_then(|a| a.as_xor_mapped_address().ok())
        .map(|a| *a.socket_address());
    let plain = msg
        .get::<MappedAddress>()
        .and_then(|a| a.as_mapped_address().ok())
        .map(|a| *a.socket_address());
    let mapped = xor
        .or(plain)
        .ok_or("success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")?;
    Ok(Answer::Mapped {
        mapped,
        other_address: msg
            .get::<OtherAddress>()
            .and_then(|a| a.as_other_address().ok())
            .map(|a| *a.socket_address()),
        response_origin: msg
            .get::<ResponseOrigin>()
            .and_then(|a| a.as_response_origin().ok())
            .map(|a| *a.socket_address()),
    })
}
