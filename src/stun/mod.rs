//! Built-in STUN server (RFC 5389/8489 + RFC 5780) and the behaviour-discovery probe.
