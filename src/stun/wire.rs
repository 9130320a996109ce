//! Glue between UDP datagrams and `stun-rs` messages.
//!
//! All real encoding/decoding is done by `stun-rs`. This module only adds the
//! few byte-level patches `stun-rs` cannot express:
//! * the icelab extension attribute [`ICELAB_RESPONSE_TARGET`] (stun-rs cannot
//!   encode unknown attributes, so we encode it as an XOR-MAPPED-ADDRESS and
//!   re-tag the type);
//! * classic RFC 3489 messages (no magic cookie) used by old clients such as
//!   `stun` from the `stun-client` package, and their CHANGED-ADDRESS /
//!   SOURCE-ADDRESS attributes.

use anyhow::{Context, Result, anyhow};
use std::net::SocketAddr;
use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::methods::BINDING;
use stun_rs::{
    DecoderContextBuilder, MAGIC_COOKIE, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunAttribute,
    StunMessage, StunMessageBuilder, TransactionId,
};

/// icelab extension: comprehension-optional attribute carrying an
/// XOR-encoded transport address (same value format as XOR-MAPPED-ADDRESS).
///
/// A Binding request carrying it asks the icelab server to send the Binding
/// response to that address, from its primary IP:port, instead of back to the
/// sender. Used to measure NAT mapping lifetime (RFC 5780 §4.6) without the
/// client needing a second public address. Lab-only: it is an open reflector,
/// so never expose this server outside a lab.
pub const ICELAB_RESPONSE_TARGET: u16 = 0xC1CE;

/// RFC 3489 SOURCE-ADDRESS (same value format as MAPPED-ADDRESS).
pub(crate) const SOURCE_ADDRESS: u16 = 0x0004;
/// RFC 3489 CHANGED-ADDRESS (same value format as MAPPED-ADDRESS).
pub(crate) const CHANGED_ADDRESS: u16 = 0x0005;

const HEADER: usize = 20;

/// A decoded datagram.
pub(crate) struct Decoded {
    pub msg: StunMessage,
    /// `Some(first 4 bytes of the 128-bit id)` for RFC 3489 messages.
    pub classic: Option<[u8; 4]>,
}

/// Decodes a datagram; RFC 3489 messages are decoded by temporarily putting
/// the magic cookie in place.
pub(crate) fn decode(buf: &[u8]) -> Result<Decoded> {
    if buf.len() < HEADER {
        return Err(anyhow!("datagram too short for STUN"));
    }
    let cookie = MAGIC_COOKIE.as_u32().to_be_bytes();
    let mut owned;
    let (bytes, classic) = if buf[4..8] == cookie {
        (buf, None)
    } else {
        owned = buf.to_vec();
        let orig: [u8; 4] = buf[4..8].try_into()?;
        owned[4..8].copy_from_slice(&cookie);
        (&owned[..], Some(orig))
    };
    let ctx = DecoderContextBuilder::default().with_unknown_data().build();
    let decoder = MessageDecoderBuilder::default().with_context(ctx).build();
    let (msg, _) = decoder.decode(bytes).map_err(|e| anyhow!("STUN decode: {e:?}"))?;
    Ok(Decoded { msg, classic })
}

/// Encodes a message; for RFC 3489 peers restores their id bytes.
pub(crate) fn encode(msg: &StunMessage, classic: Option<[u8; 4]>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 1500];
    let n =
        MessageEncoderBuilder::default().build().encode(&mut buf, msg).map_err(|e| anyhow!("STUN encode: {e:?}"))?;
    buf.truncate(n);
    if let Some(orig) = classic {
        buf[4..8].copy_from_slice(&orig);
    }
    Ok(buf)
}

/// Walks the attribute TLVs of an encoded message (only to patch types).
fn attr_offsets(buf: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = HEADER;
    while off + 4 <= buf.len() {
        out.push(off);
        let len = u16::from_be_bytes([buf[off + 2], buf[off + 3]]) as usize;
        off += 4 + len.div_ceil(4) * 4;
    }
    out
}

/// Changes the type of every attribute `from` in an encoded message to `to`.
pub(crate) fn retag(buf: &mut [u8], from: u16, to: u16) {
    for off in attr_offsets(buf) {
        if buf[off..off + 2] == from.to_be_bytes() {
            buf[off..off + 2].copy_from_slice(&to.to_be_bytes());
        }
    }
}

/// Appends ICELAB-RESPONSE-TARGET to an encoded request with id `tid`.
pub(crate) fn append_response_target(buf: &mut Vec<u8>, tid: TransactionId, target: SocketAddr) -> Result<()> {
    let tmp = StunMessageBuilder::new(BINDING, MessageClass::Indication)
        .with_transaction_id(tid)
        .with_attribute(XorMappedAddress::from(target))
        .build();
    let mut attr = encode(&tmp, None)?.split_off(HEADER);
    attr[0..2].copy_from_slice(&ICELAB_RESPONSE_TARGET.to_be_bytes());
    buf.extend_from_slice(&attr);
    let len = u16::try_from(buf.len() - HEADER)?;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Extracts ICELAB-RESPONSE-TARGET from a decoded message, if present.
pub(crate) fn response_target(msg: &StunMessage) -> Result<Option<SocketAddr>> {
    let Some(data) = msg.attributes().iter().find_map(|a| match a {
        StunAttribute::Unknown(u) if u.attribute_type().as_u16() == ICELAB_RESPONSE_TARGET => {
            Some(u.attribute_data().unwrap_or_default().to_vec())
        }
        _ => None,
    }) else {
        return Ok(None);
    };
    // Rebuild it as an XOR-MAPPED-ADDRESS so stun-rs does the XOR decoding.
    let mut buf = Vec::with_capacity(HEADER + 4 + data.len());
    buf.extend_from_slice(&[0x01, 0x11]); // Binding indication
    buf.extend_from_slice(&u16::try_from(4 + data.len())?.to_be_bytes());
    buf.extend_from_slice(&MAGIC_COOKIE.as_u32().to_be_bytes());
    buf.extend_from_slice(msg.transaction_id().as_bytes());
    buf.extend_from_slice(&[0x00, 0x20]);
    buf.extend_from_slice(&u16::try_from(data.len())?.to_be_bytes());
    buf.extend_from_slice(&data);
    let d = decode(&buf).context("bad ICELAB-RESPONSE-TARGET")?;
    let addr = d
        .msg
        .get::<XorMappedAddress>()
        .and_then(|a| a.as_xor_mapped_address().ok())
        .map(|a| *a.socket_address())
        .ok_or_else(|| anyhow!("bad ICELAB-RESPONSE-TARGET"))?;
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_target_roundtrip() {
        let tid = TransactionId::default();
        let req = StunMessageBuilder::new(BINDING, MessageClass::Request).with_transaction_id(tid).build();
        let mut buf = encode(&req, None).unwrap();
        let target: SocketAddr = "192.0.2.7:4242".parse().unwrap();
        append_response_target(&mut buf, tid, target).unwrap();
        let d = decode(&buf).unwrap();
        assert_eq!(response_target(&d.msg).unwrap(), Some(target));
        assert!(d.classic.is_none());
    }

    #[test]
    fn classic_request_decodes_and_restores_id() {
        // RFC 3489 Binding request with CHANGE-REQUEST(change port), as sent by `stun`.
        let hex = "0001000803f05a3475bd4934c4daad082d02c84a0003000400000002";
        let raw: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let d = decode(&raw).unwrap();
        assert_eq!(d.classic, Some([0x03, 0xf0, 0x5a, 0x34]));
        let out = encode(&d.msg, d.classic).unwrap();
        assert_eq!(out[4..20], raw[4..20]);
    }
}
