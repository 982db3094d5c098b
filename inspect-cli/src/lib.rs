//! # inspect-cli (not built yet)
//!
//! The `heap-inspect` command line tool will live here (issue #7).
