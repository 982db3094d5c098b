//! Turns on `cfg(pyheap_asan)` when the crate is built with AddressSanitizer
//! (`RUSTFLAGS=-Zsanitizer=address`, nightly): then `asan.rs` poisons the blocks pymalloc keeps
//! for itself. Every other build compiles the poisoning calls to nothing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pyheap_asan)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_CFG_SANITIZE");
    let sanitizers = std::env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitizers.split(',').any(|s| s == "address") {
        println!("cargo::rustc-cfg=pyheap_asan");
    }
}
