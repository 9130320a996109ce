//! Timing the server's answers: each STUN request read off a listener is noted by
//! transaction id with the instant it was read; the answer sent with that id closes it
//! and its elapsed time goes to the request method's histogram.
//!
//! Only the fixed 20-byte STUN header is read (the `stun` crate's header test and type
//! decoding), so ChannelData and indications, the relayed data, cost a few byte tests.
//! The notes are bounded ([`CAP`], oldest evicted): requests the server never answers
//! (dropped, or a client gone) cannot grow them.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH, MessageType, Method, is_message,
};

/// Requests awaiting their answer, at most.
pub(crate) const CAP: usize = 4096;

/// STUN message class (RFC 8489 §5), from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// The class, method and transaction id of a STUN message; `None` for anything else
/// (ChannelData starts with bits 01, which no STUN type has).
pub(crate) fn header(pkt: &[u8]) -> Option<(Class, Method, [u8; 12])> {
    if !is_message(pkt) || pkt[0] & 0xC0 != 0 {
        return None;
    }
    let mut t = MessageType::default();
    t.read_value(u16::from_be_bytes([pkt[0], pkt[1]]));
    let class = match t.class {
        CLASS_REQUEST => Class::Request,
        CLASS_INDICATION => Class::Indication,
        CLASS_ERROR_RESPONSE => Class::Error,
        _ => Class::Success,
    };
    Some((class, t.method, pkt[8..20].try_into().ok()?))
}

/// How a method is named in the figures.
pub(crate) fn method_name(method: Method) -> &'static str {
    match method {
        METHOD_BINDING => "Binding",
        METHOD_ALLOCATE => "Allocate",
        METHOD_REFRESH => "Refresh",
        METHOD_CREATE_PERMISSION => "CreatePermission",
        METHOD_CHANNEL_BIND => "ChannelBind",
        _ => "other",
    }
}

/// Requests read and not answered yet, oldest first, at most [`CAP`].
#[derive(Default)]
pub(crate) struct Pending {
    /// Transaction id -> (when read, method, note number).
    by_id: HashMap<[u8; 12], (Instant, Method, u64)>,
    /// Note numbers in order, for eviction.
    order: VecDeque<([u8; 12], u64)>,
    next: u64,
}

impl Pending {
    /// Notes a request; a retransmission keeps the first read's instant.
    pub(crate) fn note(&mut self, id: [u8; 12], method: Method, at: Instant) {
        if self.by_id.contains_key(&id) {
            return;
        }
        self.next += 1;
        self.by_id.insert(id, (at, method, self.next));
        self.order.push_back((id, self.next));
        while self.order.len() > CAP {
            let Some((old, n)) = self.order.pop_front() else { break };
            if self.by_id.get(&old).is_some_and(|e| e.2 == n) {
                self.by_id.remove(&old);
            }
        }
    }

    /// The request `id` answered now: its method and when it was read.
    pub(crate) fn answer(&mut self, id: &[u8; 12]) -> Option<(Method, Instant)> {
        self.by_id.remove(id).map(|(at, method, _)| (method, at))
    }

    /// Requests awaiting an answer.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(typ: u16, id: u8) -> Vec<u8> {
        let mut m = typ.to_be_bytes().to_vec();
        m.extend([0, 0]);
        m.extend([0x21, 0x12, 0xA4, 0x42]);
        m.extend([id; 12]);
        m
    }

    #[test]
    fn headers_give_class_and_method() {
        assert_eq!(header(&msg(0x0001, 1)), Some((Class::Request, METHOD_BINDING, [1; 12])));
        assert_eq!(header(&msg(0x0103, 2)).map(|h| (h.0, h.1)), Some((Class::Success, METHOD_ALLOCATE)));
        assert_eq!(header(&msg(0x0119, 2)).map(|h| (h.0, h.1)), Some((Class::Error, METHOD_CHANNEL_BIND)));
        assert_eq!(
            header(&msg(0x0016, 2)).map(|h| (h.0, method_name(h.1))),
            Some((Class::Indication, "other")),
            "Send"
        );
        assert_eq!(header(&msg(0x0008, 2)).map(|h| method_name(h.1)), Some("CreatePermission"));
        assert_eq!(header(&[0x40, 0x00, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut no_cookie = msg(0x0001, 1);
        no_cookie[4] = 0;
        assert_eq!(header(&no_cookie), None);
    }

    #[test]
    fn pending_is_bounded_and_answered_once() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        for i in 0..(CAP as u32 + 10) {
            let mut id = [0u8; 12];
            id[..4].copy_from_slice(&i.to_be_bytes());
            p.note(id, METHOD_ALLOCATE, t0);
        }
        assert_eq!(p.len(), CAP);
        assert_eq!(p.answer(&[0; 12]), None, "the oldest was evicted");
        let mut last = [0u8; 12];
        last[..4].copy_from_slice(&(CAP as u32 + 9).to_be_bytes());
        assert_eq!(p.answer(&last), Some((METHOD_ALLOCATE, t0)));
        assert_eq!(p.answer(&last), None);
        // A retransmission keeps the first instant.
        let later = t0 + std::time::Duration::from_millis(5);
        p.note([9; 12], METHOD_BINDING, t0);
        p.note([9; 12], METHOD_BINDING, later);
        assert_eq!(p.answer(&[9; 12]), Some((METHOD_BINDING, t0)));
    }
}
