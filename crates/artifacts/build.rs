//! Nothing to generate. `protoc-bin-vendored` is a build dependency so that every build
//! compiling `datafusion-substrait` has it unpacked in Cargo's registry, where
//! `tools/protoc` (the `PROTOC` of `.cargo/config.toml`) finds it.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // Touch the crate so the dependency is real, not just declared.
    let _ = protoc_bin_vendored::protoc_bin_path();
}
