//! Topology file format.
