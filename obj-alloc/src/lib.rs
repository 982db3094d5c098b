//! # obj-alloc: tier 1 of pyheap (not built yet)
//!
//! pymalloc's size classes, pools and per-kind free lists will live here (issue #3).
