//! Generates the gRPC code and the file descriptor set (for reflection) from
//! `proto/`, with a vendored protoc so no system protoc is needed.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "session.proto",
        "token.proto",
        "issuer.proto",
        "validator.proto",
        "edge_token.proto",
        "event.proto",
    ]
    .map(|file| proto_root.join("sigil/v1").join(file));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let descriptor_path = PathBuf::from(env::var("OUT_DIR")?).join("sigil_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(
            config,
            &files,
            &[proto_root, protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
