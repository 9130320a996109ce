//! Applying a plan.
