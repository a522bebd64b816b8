//! Two link options for release builds of the `improbe` binary
//! (docs/performance.md, memory):
//!
//! - Relative relocations packed (DT_RELR) on glibc Linux: the time zone
//!   table alone needs some 28,000 of them, and as classic RELA entries they
//!   are a megabyte of the binary that every start reads whole. Needs GNU ld
//!   2.38+ or lld, and glibc 2.36+ where the binary runs (Debian bookworm and
//!   later); `IMPROBE_PACK_RELOCS=0` builds without.
//! - The functions a ready prober runs placed first and together in the
//!   machine code, in the order `link-order.txt` gives
//!   (`scripts/link-order.sh` writes it), where the linker is Rust's own lld,
//!   the default for x86_64 Linux. Names the list has and the build does not
//!   are passed over, so a stale list costs memory, never a build;
//!   `IMPROBE_LINK_ORDER=0` builds without.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=IMPROBE_PACK_RELOCS");
    println!("cargo:rerun-if-env-changed=IMPROBE_LINK_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = env::var("TARGET").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let libc = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let wanted = |name: &str| env::var(name).map_or(true, |v| v != "0");
    if !release || os != "linux" || libc != "gnu" {
        return;
    }
    if wanted("IMPROBE_PACK_RELOCS") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if wanted("IMPROBE_LINK_ORDER") && links_with_rust_lld(&target) {
        let list =
            std::path::Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("link-order.txt");
        if list.exists() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                list.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
    }
}

/// Rust links x86_64 Linux programs with its own lld unless told to use
/// another linker; GNU ld would refuse `--symbol-ordering-file`.
fn links_with_rust_lld(target: &str) -> bool {
    let linker_configured = env::var_os("RUSTC_LINKER").is_some()
        || env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|flags| {
            flags
                .split('\x1f')
                .any(|flag| flag.contains("linker") || flag.contains("link-self-contained"))
        });
    target == "x86_64-unknown-linux-gnu" && !linker_configured
}
