//! Built-in TURN server (placeholder).
