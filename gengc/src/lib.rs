//! # gengc: tier 3 of pyheap (not built yet)
//!
//! The generational cycle collector will live here (issue #5).
