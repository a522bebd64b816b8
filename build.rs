//! Release builds for glibc Linux pack their relative relocations (DT_RELR):
//! the time zone table alone needs some 28,000 of them, and as classic RELA
//! entries they are a megabyte of the binary that every start reads whole
//! (docs/performance.md, memory). Needs GNU ld 2.38+ or lld, and glibc 2.36+
//! where the binary runs (Debian bookworm and later);
//! `IMPROBE_PACK_RELOCS=0` builds without.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IMPROBE_PACK_RELOCS");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let wanted = std::env::var("IMPROBE_PACK_RELOCS").map_or(true, |v| v != "0");
    if os == "linux" && env == "gnu" && release && wanted {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
